// The member's points: balances with what expires soonest, and a quoted conversion
// between two of their programs with the quote's time counting down.

import { gql, idempotencyKey, SessionEnded } from "./api.js";
import { formatDate, formatDateTime, formatMoney, formatNumber, t } from "./i18n.js";
import { state } from "./state.js";
import { $, guarded, h, option, say, sayUserErrors } from "./ui.js";

const SOON_MS = 90 * 24 * 3600 * 1000;
// A connected program's balance older than this is the last one its partner gave.
const STALE_MS = 60 * 1000;

/** Read the balances again (after a redemption, cancellation or conversion). */
export async function refreshMember() {
  const data = await gql("Viewer");
  if (!data.viewer.member) throw new SessionEnded(t("sessionExpired"));
  state.member = data.viewer.member;
  renderBalances();
  renderConvertForm();
}

/** One card per program, the soonest expiry over all of them, and the credit level. */
export function renderBalances() {
  const accounts = state.member.accounts;
  const level = state.member.creditLevel;
  const credit = $("credit-level");
  say(credit, level ? t("creditLevel", { level: t(`credit.${level}`) }) : "");
  credit.dataset.level = level ?? "";
  $("balance-list").replaceChildren(...accounts.map(balanceCard));
  const lots = accounts
    .filter((a) => a.expiring.length > 0)
    .map((a) => ({ program: a.program.code, ...a.expiring[0] }))
    .sort((a, b) => Date.parse(a.expiresAt) - Date.parse(b.expiresAt));
  const soonest = lots[0];
  const line = $("expiring-soonest");
  line.textContent = soonest
    ? t("soonestOverall", {
        points: formatNumber(soonest.points),
        program: soonest.program,
        date: formatDate(soonest.expiresAt),
      })
    : t("noExpiry");
  line.dataset.program = soonest?.program ?? "";
}

/** Whether a program is GREEN: its points pay only for the green zone. */
export function isGreen(code) {
  return state.directory?.programs.some((p) => p.code === code && p.kind === "GREEN") ?? false;
}

function balanceCard(account) {
  const { program } = account;
  const green = program.kind === "GREEN";
  const lot = account.expiring[0];
  const soon = lot && Date.parse(lot.expiresAt) - Date.now() < SOON_MS;
  const asOf = account.balanceAsOf;
  const stale = asOf && Date.now() - Date.parse(asOf) > STALE_MS;
  return h(
    "article",
    {
      class: green ? "balance green" : "balance",
      testid: "balance",
      dataset: { program: program.code, kind: program.kind },
    },
    h(
      "div",
      { class: "balance-head" },
      h("span", { class: "code" }, program.code),
      h("span", { class: "pname" }, program.name),
    ),
    h(
      "div",
      { class: "amount", testid: "balance-points", dataset: { points: account.balance } },
      formatNumber(account.balance),
      h("small", {}, ` ${program.unitName}`),
    ),
    stale
      ? h(
          "div",
          { class: "muted", testid: "balance-as-of" },
          t("asOf", { time: formatDateTime(asOf) }),
        )
      : null,
    tierBlock(account.tier),
    account.held > 0
      ? h(
          "div",
          { class: "muted", testid: "balance-held" },
          t("held", { points: formatNumber(account.held) }),
        )
      : null,
    h(
      "div",
      { class: soon ? "expiry soon" : "expiry", testid: "balance-expiry" },
      lot
        ? t("expiresSoonest", { points: formatNumber(lot.points), date: formatDate(lot.expiresAt) })
        : t("neverExpires"),
    ),
    green
      ? h("div", { class: "muted green-note", testid: "balance-green-note" }, t("greenNote"))
      : null,
    green
      ? h(
          "button",
          {
            type: "button",
            class: "link",
            testid: "green-zone-button",
            // The catalog opens the green zone (catalog.js listens): priced in this program.
            onclick: () =>
              document.dispatchEvent(new CustomEvent("mall:green-zone", { detail: program.code })),
          },
          t("greenZoneButton"),
        )
      : null,
  );
}

/** The member's tier in the program, its benefits, and the way to the next one. */
function tierBlock(status) {
  if (!status) return null;
  const { tier, next } = status;
  const spent = Number(status.qualifyingSpend);
  const lines = [
    h(
      "div",
      { class: "tier-head" },
      h(
        "span",
        { class: tier ? "tier-badge" : "tier-badge none", testid: "tier-name" },
        tier ? tier.name : t("noTier"),
      ),
      tier?.benefits.length
        ? h("span", { class: "tier-benefits", testid: "tier-benefits" }, tier.benefits.join(" · "))
        : null,
    ),
    h(
      "div",
      { class: "muted", testid: "tier-qualifying" },
      t("tierProgress", {
        spend: formatMoney(status.qualifyingSpend),
        orders: formatNumber(status.qualifyingOrders),
      }),
    ),
  ];
  if (next) {
    const needed = Number(next.minSpend);
    const toNext = [t("tierToNext", { amount: formatMoney(status.spendToNext), tier: next.name })];
    if (status.ordersToNext > 0) {
      toNext.push(t("tierOrdersToNext", { orders: formatNumber(status.ordersToNext) }));
    }
    lines.push(
      h("progress", {
        class: "tier-progress",
        testid: "tier-progress",
        max: String(needed || 1),
        value: String(Math.min(spent, needed)),
      }),
      h("div", { class: "tier-next", testid: "tier-next" }, toNext.join(" ")),
    );
  } else {
    lines.push(h("div", { class: "tier-next", testid: "tier-next" }, t("tierTop")));
  }
  return h(
    "div",
    {
      class: "tier",
      testid: "balance-tier",
      dataset: {
        tier: tier?.code ?? "",
        next: next?.code ?? "",
        spendToNext: status.spendToNext ?? "",
      },
    },
    ...lines,
  );
}

// ---------------------------------------------------------------- quote and convert

/** The conversion form's programs: the member's own, with balances. */
export function renderConvertForm() {
  const form = $("quote-form");
  // GREEN points are earned on green purchases and spent in the green zone, never converted.
  const accounts = state.member.accounts.filter((a) => a.program.kind !== "GREEN");
  const codes = (list) => list.map((a) => a.program.code);
  const label = (a) => `${a.program.code} · ${formatNumber(a.balance)}`;
  const funded = accounts.find((a) => a.balance > 0) ?? accounts[0];
  const from = codes(accounts).includes(form.from.value) ? form.from.value : funded?.program.code;
  form.from.replaceChildren(
    ...accounts.map((a) => option(a.program.code, label(a), a.program.code === from)),
  );
  const targets = accounts.filter((a) => a.program.code !== from);
  const to = codes(targets).includes(form.to.value) ? form.to.value : targets[0]?.program.code;
  form.to.replaceChildren(
    ...targets.map((a) => option(a.program.code, label(a), a.program.code === to)),
  );
}

/** The input of quoting or converting the member's `points` of `from` into `to`. */
function conversion(from, to, points, more = {}) {
  return { memberId: state.member.id, from, to, points, ...more };
}

async function requestQuote(event) {
  event.preventDefault();
  const form = event.currentTarget;
  clearQuote();
  say($("convert-result"), "");
  const button = $("quote-button");
  button.disabled = true;
  await guarded(async () => {
    const points = Number.parseInt(form.points.value, 10);
    const data = await gql("QuoteConversion", {
      input: conversion(form.from.value, form.to.value, points),
    });
    const payload = data.quoteConversion;
    if (payload.userErrors.length > 0) {
      sayUserErrors($("quote-error"), payload.userErrors);
      return;
    }
    state.quote = payload.quote;
    state.quoteKey = idempotencyKey();
    renderQuote();
    state.quoteTimer = setInterval(tickQuote, 250);
  }, $("quote-error"));
  button.disabled = false;
}

/** Show the quote and the time it has left. */
export function renderQuote() {
  const q = state.quote;
  if (!q) return;
  const box = $("quote");
  box.hidden = false;
  Object.assign(box.dataset, {
    points: q.points,
    receive: q.receive,
    from: q.from.code,
    to: q.to.code,
  });
  $("quote-summary").textContent = t("quoteSummary", {
    points: formatNumber(q.points),
    from: q.from.code,
    receive: formatNumber(q.receive),
    to: q.to.code,
  });
  $("quote-route").textContent = t("route", { route: q.route.map((p) => p.code).join(" → ") });
  tickQuote();
}

function tickQuote() {
  const q = state.quote;
  if (!q) return;
  const left = Math.max(0, Math.ceil((Date.parse(q.expiresAt) - Date.now()) / 1000));
  const countdown = $("quote-countdown");
  countdown.dataset.seconds = String(left);
  if (left === 0) {
    countdown.textContent = t("quoteExpired");
    countdown.classList.add("expired");
    $("convert-button").disabled = true;
    clearInterval(state.quoteTimer);
    state.quoteTimer = null;
    return;
  }
  const time = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
  countdown.textContent = t("expiresIn", { time });
  countdown.classList.toggle("expired", false);
}

/** Stop the countdown. */
export function stopQuote() {
  if (state.quoteTimer) clearInterval(state.quoteTimer);
  state.quoteTimer = null;
}

/** Forget the quote (its inputs changed, or it was used). */
export function clearQuote() {
  stopQuote();
  state.quote = null;
  state.quoteKey = null;
  $("quote").hidden = true;
  $("convert-button").disabled = false;
  say($("quote-error"), "");
  say($("convert-error"), "");
}

async function convert() {
  const q = state.quote;
  if (!q) return;
  const button = $("convert-button");
  button.disabled = true;
  say($("convert-error"), "");
  let done = false;
  await guarded(async () => {
    const data = await gql("ConvertPoints", {
      input: conversion(q.from.code, q.to.code, q.points, {
        quoteId: q.id,
        idempotencyKey: state.quoteKey,
      }),
    });
    const payload = data.convertPoints;
    // The hub answered: a further attempt is a new request with a new key.
    state.quoteKey = idempotencyKey();
    if (payload.userErrors.length > 0) {
      sayUserErrors($("convert-error"), payload.userErrors);
      return;
    }
    const c = payload.conversion;
    done = true;
    clearQuote();
    const result = $("convert-result");
    say(
      result,
      t("converted", {
        debited: formatNumber(c.pointsDebited),
        from: c.from.code,
        credited: formatNumber(c.pointsCredited),
        to: c.to.code,
        status: c.status,
      }),
    );
    result.dataset.status = c.status;
    await refreshMember();
  }, $("convert-error"));
  if (!done && state.quote) button.disabled = state.quoteTimer === null;
}

/** Wire the conversion form. */
export function initWallet() {
  $("quote-form").addEventListener("submit", requestQuote);
  $("quote-form").addEventListener("change", (event) => {
    clearQuote();
    if (event.target.name === "from") renderConvertForm();
  });
  $("convert-button").addEventListener("click", convert);
}
