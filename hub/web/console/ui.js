// How the console shows things: numbers, money and times, status badges, merchant cells,
// money figures, and which of its views is on screen.

import { $, h } from "/assets/dom.js";
import { cents, formatMoney, fromCents } from "/assets/money.js";
import { figure } from "/assets/report.js";
import { TZ } from "./state.js";

export function moneyCell(value, testid = null, extra = "") {
  const amount = cents(value);
  const tone = amount < 0n ? " negative" : amount > 0n ? " positive" : " zero";
  return h(
    "td",
    { class: `num money${tone}${extra}`, testid, dataset: { amount: fromCents(amount) } },
    formatMoney(value),
  );
}

export const numberFormat = new Intl.NumberFormat("en-US");

// sv-SE formats as "2026-11-25 16:43:12": unambiguous, and sorts as text.
const dateTimeFormat = new Intl.DateTimeFormat("sv-SE", {
  timeZone: TZ,
  year: "numeric",
  month: "2-digit",
  day: "2-digit",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});
const dateFormat = new Intl.DateTimeFormat("sv-SE", {
  timeZone: TZ,
  year: "numeric",
  month: "2-digit",
  day: "2-digit",
});

export function formatDateTime(iso) {
  return iso ? dateTimeFormat.format(new Date(iso)) : "";
}

/** Today's business date in the settlement time zone, as YYYY-MM-DD. */
export function todayInTz() {
  return dateFormat.format(new Date());
}

export function plural(count, noun) {
  return `${numberFormat.format(count)} ${noun}${count === 1 ? "" : "s"}`;
}

export function kindLabel(kind) {
  return kind.charAt(0) + kind.slice(1).toLowerCase();
}

export function badge(status, testid = null) {
  return h("span", { class: `badge status-${status.toLowerCase()}`, testid }, status);
}

/** The rows in the order of their merchant's name; `party(row)`: which merchant that is. */
export function byName(rows, party = (row) => row.merchant) {
  return [...rows].sort((a, b) => party(a).name.localeCompare(party(b).name));
}

/** A merchant's name and id; with `href`, the name links there. */
export function merchantCell(merchant, href = null) {
  return h(
    "td",
    { class: "merchant", dataset: { merchant: merchant.id } },
    href
      ? h("a", { class: "name", href }, merchant.name)
      : h("span", { class: "name" }, merchant.name),
    h("span", { class: "id" }, merchant.id),
  );
}

export function moneyFigure(label, amount, testid, tone = "") {
  return figure(label, formatMoney(amount), testid, `money-figure ${tone}`, {
    amount: fromCents(cents(amount)),
  });
}

/** Show one of the console's views (or none), hide the others. */
export function showOnly(name) {
  for (const view of ["nothing", "batch-view", "statement-view"]) $(view).hidden = view !== name;
}
