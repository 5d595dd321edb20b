// Money as the hub sends it: decimal strings ("-1234.50"). Sums are taken in integer cents
// (BigInt), never in floats; what is shown has the same digits, grouped for reading.

/** "-1234.5" -> -123450n: the amount in cents (digits past the second decimal are dropped). */
export function cents(value) {
  const text = String(value).trim();
  const negative = text.startsWith("-");
  const [whole, fraction = ""] = text.replace(/^[-+]/, "").split(".");
  const amount = BigInt(whole || "0") * 100n + BigInt(`${fraction}00`.slice(0, 2));
  return negative ? -amount : amount;
}

/** -123450n -> "-1234.50": the hub's spelling again. */
export function fromCents(amount) {
  const negative = amount < 0n;
  const abs = negative ? -amount : amount;
  return `${negative ? "-" : ""}${abs / 100n}.${String(abs % 100n).padStart(2, "0")}`;
}

/** The sum of decimal strings, in cents. */
export function sum(values) {
  return values.reduce((total, v) => total + cents(v), 0n);
}

/** "-1234.5" -> "-1,234.50": grouped for reading, 2 places, the same digits. */
export function formatMoney(value) {
  const text = fromCents(cents(value));
  const negative = text.startsWith("-");
  const [whole, fraction] = text.replace("-", "").split(".");
  return `${negative ? "-" : ""}${whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",")}.${fraction}`;
}
