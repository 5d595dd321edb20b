// The reference universal mall: what a storefront team builds on the hub's public
// GraphQL API with a STOREFRONT key and a member session token. Plain browser JS;
// every GraphQL document it sends is a file in operations/.

import { gql, HubError, idempotencyKey, SessionEnded, setCredentials } from "./api.js";
import {
  CATEGORIES,
  formatDate,
  formatDateTime,
  formatNumber,
  initialLanguage,
  KINDS,
  language,
  setLanguage,
  t,
} from "./i18n.js";

const PAGE_SIZE = 8;
const REDEMPTIONS_PAGE = 10;
const SESSION_KEY = "mall.session";
// Rewards booked for a time; they need a slot even when none is left to offer.
const SLOTTED_KINDS = new Set([
  "ATTRACTION_TICKET",
  "HOTEL_NIGHT",
  "ROOM_UPGRADE",
  "HOTEL_SERVICE",
  "AWARD_FLIGHT",
]);
const SOON_MS = 90 * 24 * 3600 * 1000;

const state = {
  member: null,
  directory: null,
  filters: emptyFilters(),
  catalog: { generation: 0, nodes: [], endCursor: null, hasNextPage: false, loading: false },
  unavailable: [],
  redemptions: { generation: 0, nodes: [], endCursor: null, hasNextPage: false },
  quote: null,
  quoteKey: null,
  quoteTimer: null,
  demoMembers: null,
};

// ---------------------------------------------------------------- helpers

function $(testid, root = document) {
  return root.querySelector(`[data-testid="${testid}"]`);
}

/** An element; props: class, testid, dataset, on<event>, hidden/disabled, other attributes. */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "testid") el.dataset.testid = value;
    else if (name === "dataset") {
      for (const [k, v] of Object.entries(value)) el.dataset[k] = String(v);
    } else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

function option(value, label, selected = false) {
  const el = h("option", { value }, label);
  el.selected = selected;
  return el;
}

/** Show `text` in a message element (hidden when empty); `code` goes to data-code. */
function say(el, text, code = "") {
  el.textContent = text || "";
  el.dataset.code = code || "";
  el.hidden = !text;
}

function sayUserErrors(el, errors) {
  say(el, errors.map((e) => e.message).join(" "), errors[0]?.code);
}

function points(n, program) {
  return `${formatNumber(n)} ${program}`;
}

function describe(error) {
  return error.code === "NETWORK" ? t("networkError", { message: error.message }) : error.message;
}

/** Run an action; a lapsed session goes back to sign-in, other failures show in errorEl. */
async function guarded(action, errorEl) {
  try {
    await action();
  } catch (error) {
    if (error instanceof SessionEnded) {
      await showSignIn(t("sessionExpired"));
      return;
    }
    if (!(error instanceof HubError)) console.error(error);
    if (errorEl) say(errorEl, describe(error), error.code);
  }
}

function emptyFilters() {
  return { priceIn: null, category: "", merchant: "", kind: "", date: "", search: "" };
}

function today() {
  const d = new Date();
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

// ---------------------------------------------------------------- sign-in

async function demoMembers() {
  // The demo's stand-in for a storefront backend; a real storefront has its own.
  try {
    const response = await fetch(new URL("demo/members", import.meta.url));
    if (!response.ok) return [];
    const people = await response.json();
    return Array.isArray(people) ? people : [];
  } catch {
    return [];
  }
}

async function showSignIn(message = "") {
  setCredentials(null);
  sessionStorage.removeItem(SESSION_KEY);
  stopQuote();
  state.member = null;
  state.filters = emptyFilters();
  state.catalog.generation += 1;
  state.redemptions.generation += 1;
  $("mall").hidden = true;
  $("who").hidden = true;
  $("signin").hidden = false;
  say($("signin-message"), message);
  say($("signin-error"), "");
  if (state.demoMembers === null) state.demoMembers = await demoMembers();
  const demo = state.demoMembers.length > 0;
  $("demo-signin").hidden = !demo;
  $("manual-signin").open = !demo;
  $("member-picker").replaceChildren(
    ...state.demoMembers.map((person) =>
      h(
        "li",
        {},
        h(
          "button",
          {
            type: "button",
            class: "member",
            testid: "demo-member",
            dataset: { memberId: person.id },
            onclick: (event) => demoSignIn(person.id, event.currentTarget),
          },
          h("span", { class: "avatar", "aria-hidden": "true" }, person.name.slice(0, 1)),
          person.name,
        ),
      ),
    ),
  );
}

async function demoSignIn(memberId, button) {
  button.disabled = true;
  try {
    const response = await fetch(new URL("demo/session", import.meta.url), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ memberId }),
    });
    if (!response.ok) throw new HubError(`HTTP ${response.status}`);
    const session = await response.json();
    await signIn({ key: session.storefrontKey, token: session.token });
  } catch (error) {
    if (!(error instanceof HubError)) console.error(error);
    say($("signin-error"), t("signInFailed", { message: error.message }), error.code);
  } finally {
    button.disabled = false;
  }
}

async function manualSignIn(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const button = $("signin-submit");
  button.disabled = true;
  try {
    await signIn({ key: form.key.value.trim(), token: form.token.value.trim() });
  } catch (error) {
    say($("signin-error"), t("signInFailed", { message: error.message }), error.code);
  } finally {
    button.disabled = false;
  }
}

/** Check the credentials with the hub (viewer.member), then open the mall. */
async function signIn(credentials) {
  setCredentials(credentials);
  let data;
  try {
    data = await gql("Viewer");
  } catch (error) {
    setCredentials(null);
    throw error;
  }
  if (!data.viewer.member) {
    setCredentials(null);
    throw new HubError(t("notAMember"), "NO_MEMBER");
  }
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(credentials));
  state.member = data.viewer.member;
  state.directory ??= await gql("MallDirectory");
  const codes = state.member.accounts.map((a) => a.program.code);
  state.filters.priceIn = codes.includes("HUB") ? "HUB" : (codes[0] ?? "HUB");
  $("signin").hidden = true;
  $("who").hidden = false;
  $("member-name").textContent = state.member.displayName;
  $("mall").hidden = false;
  clearQuote();
  say($("convert-result"), "");
  renderBalances();
  renderConvertForm();
  renderFilters();
  resetCatalog();
  await guarded(() => loadRedemptions(true), $("redemptions-error"));
}

// ---------------------------------------------------------------- balances

async function refreshMember() {
  const data = await gql("Viewer");
  if (!data.viewer.member) throw new SessionEnded(t("sessionExpired"));
  state.member = data.viewer.member;
  renderBalances();
  renderConvertForm();
}

function renderBalances() {
  const accounts = state.member.accounts;
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

function balanceCard(account) {
  const { program } = account;
  const lot = account.expiring[0];
  const soon = lot && Date.parse(lot.expiresAt) - Date.now() < SOON_MS;
  return h(
    "article",
    { class: "balance", testid: "balance", dataset: { program: program.code } },
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
    account.held > 0
      ? h("div", { class: "muted", testid: "balance-held" }, t("held", { points: formatNumber(account.held) }))
      : null,
    h(
      "div",
      { class: soon ? "expiry soon" : "expiry", testid: "balance-expiry" },
      lot
        ? t("expiresSoonest", { points: formatNumber(lot.points), date: formatDate(lot.expiresAt) })
        : t("neverExpires"),
    ),
  );
}

// ---------------------------------------------------------------- quote and convert

function renderConvertForm() {
  const form = $("quote-form");
  const accounts = state.member.accounts;
  const from = form.from.value || (accounts.find((a) => a.balance > 0) ?? accounts[0])?.program.code;
  const label = (a) => `${a.program.code} · ${formatNumber(a.balance)}`;
  form.from.replaceChildren(...accounts.map((a) => option(a.program.code, label(a), a.program.code === from)));
  const targets = accounts.filter((a) => a.program.code !== from);
  const to = targets.some((a) => a.program.code === form.to.value) ? form.to.value : targets[0]?.program.code;
  form.to.replaceChildren(...targets.map((a) => option(a.program.code, label(a), a.program.code === to)));
}

async function requestQuote(event) {
  event.preventDefault();
  const form = event.currentTarget;
  clearQuote();
  say($("convert-result"), "");
  const button = $("quote-button");
  button.disabled = true;
  await guarded(async () => {
    const data = await gql("QuoteConversion", {
      input: {
        memberId: state.member.id,
        from: form.from.value,
        to: form.to.value,
        points: Number.parseInt(form.points.value, 10),
      },
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

function renderQuote() {
  const q = state.quote;
  if (!q) return;
  const box = $("quote");
  box.hidden = false;
  Object.assign(box.dataset, { points: q.points, receive: q.receive, from: q.from.code, to: q.to.code });
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

function stopQuote() {
  if (state.quoteTimer) clearInterval(state.quoteTimer);
  state.quoteTimer = null;
}

function clearQuote() {
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
      input: {
        memberId: state.member.id,
        from: q.from.code,
        to: q.to.code,
        points: q.points,
        quoteId: q.id,
        idempotencyKey: state.quoteKey,
      },
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

// ---------------------------------------------------------------- catalog

function renderFilters() {
  const form = $("filters");
  const f = state.filters;
  const { merchants, programs } = state.directory;
  const mine = new Set(state.member.accounts.map((a) => a.program.code));
  form.priceIn.replaceChildren(
    ...[...programs]
      .sort((a, b) => Number(mine.has(b.code)) - Number(mine.has(a.code)))
      .map((p) => option(p.code, `${p.code} · ${p.name}`, p.code === f.priceIn)),
  );
  const present = new Set(merchants.map((m) => m.category));
  form.category.replaceChildren(
    option("", t("all")),
    ...CATEGORIES.filter((c) => present.has(c)).map((c) =>
      option(c, t(`category.${c}`), c === f.category),
    ),
  );
  form.merchant.replaceChildren(
    option("", t("all")),
    ...[...merchants]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((m) => option(m.id, m.name, m.id === f.merchant)),
  );
  form.kind.replaceChildren(
    option("", t("all")),
    ...KINDS.map((k) => option(k, t(`kind.${k}`), k === f.kind)),
  );
  form.date.min = today();
  form.date.value = f.date;
  form.search.value = f.search;
}

function readFilters() {
  const form = $("filters");
  state.filters = {
    priceIn: form.priceIn.value,
    category: form.category.value,
    merchant: form.merchant.value,
    kind: form.kind.value,
    date: form.date.value,
    search: form.search.value,
  };
  resetCatalog();
}

function catalogFilter() {
  const f = state.filters;
  const filter = {
    category: f.category || null,
    merchant: f.merchant || null,
    kind: f.kind || null,
    availableOn: f.date || null,
    search: f.search.trim() || null,
  };
  return Object.fromEntries(Object.entries(filter).filter(([, v]) => v !== null));
}

function resetCatalog() {
  const c = state.catalog;
  c.generation += 1;
  c.nodes = [];
  c.endCursor = null;
  c.hasNextPage = true;
  c.loading = false;
  state.unavailable = [];
  $("reward-grid").replaceChildren();
  renderBanner();
  say($("catalog-error"), "");
  loadMore();
}

/** The next page after endCursor; the IntersectionObserver calls it near the list's end. */
async function loadMore() {
  const c = state.catalog;
  if (c.loading || !c.hasNextPage || !state.member) return;
  c.loading = true;
  const generation = c.generation;
  renderStatus();
  let failed = null;
  try {
    const data = await gql("Rewards", {
      filter: catalogFilter(),
      priceIn: state.filters.priceIn,
      date: state.filters.date || null,
      first: PAGE_SIZE,
      after: c.endCursor,
    });
    if (generation !== c.generation) return; // the filters changed meanwhile
    const page = data.rewards;
    const nodes = page.edges.map((e) => e.node);
    c.nodes.push(...nodes);
    c.endCursor = page.pageInfo.endCursor;
    c.hasNextPage = page.pageInfo.hasNextPage;
    state.unavailable = page.unavailableMerchants;
    $("reward-grid").append(...nodes.map(rewardCard));
    renderBanner();
  } catch (error) {
    if (error instanceof SessionEnded) {
      await showSignIn(t("sessionExpired"));
      return;
    }
    failed = error;
  } finally {
    if (generation === c.generation) c.loading = false;
  }
  if (generation !== c.generation) return;
  if (failed) {
    c.hasNextPage = false;
    const retry = h(
      "button",
      {
        type: "button",
        class: "link",
        testid: "catalog-retry",
        onclick: () => {
          say($("catalog-error"), "");
          c.hasNextPage = true;
          loadMore();
        },
      },
      "↻",
    );
    say($("catalog-error"), describe(failed), failed.code);
    $("catalog-error").append(" ", retry);
  }
  renderStatus();
  // Re-observing reports the sentinel again: if it is still in view, load the next page.
  observer.unobserve($("catalog-sentinel"));
  observer.observe($("catalog-sentinel"));
}

function renderStatus() {
  const c = state.catalog;
  const status = $("catalog-status");
  let text = "";
  if (c.loading) text = t("loading");
  else if (!c.hasNextPage && c.nodes.length === 0 && !$("catalog-error").textContent)
    text = t("noRewards");
  else if (!c.hasNextPage && c.nodes.length > 0) text = t("endOfCatalog");
  status.textContent = text;
  status.dataset.state = c.loading ? "loading" : c.hasNextPage ? "more" : "end";
  status.dataset.count = String(c.nodes.length);
}

function renderBanner() {
  const names = state.unavailable.map((m) => m.name);
  const banner = $("unavailable-banner");
  say(banner, names.length ? t("unavailable", { names: names.join(", ") }) : "");
  banner.dataset.merchants = state.unavailable.map((m) => m.id).join(",");
}

function slotLabel(slot) {
  const end = new Intl.DateTimeFormat(language() === "zh" ? "zh-CN" : "en-GB", {
    timeStyle: "short",
  }).format(new Date(slot.endsAt));
  const left = slot.remaining === null ? "" : ` · ${t("slotLeft", { left: slot.remaining })}`;
  return `${formatDateTime(slot.startsAt)}–${end}${left}`;
}

function rewardCard(node) {
  const program = state.filters.priceIn;
  const price = node.priceIn;
  const payable = price !== null && price !== undefined;
  const needsSlot = node.slots.length > 0 || SLOTTED_KINDS.has(node.kind);
  const own = node.merchant.program.code;
  // One key per attempt the hub has not answered yet; a retry after a lost answer reuses it.
  let attemptKey = null;

  const error = h("span", { class: "error", testid: "redeem-error", role: "alert", hidden: true });
  const done = h("p", { class: "success", testid: "redeem-success", role: "status", hidden: true });
  const slotSelect = needsSlot
    ? h(
        "select",
        {
          testid: "slot-select",
          onchange: () => {
            attemptKey = null;
            say(error, "");
          },
        },
        option("", node.slots.length ? t("pickSlot") : t("noSlots")),
        node.slots.map((s) => {
          const el = option(s.id, slotLabel(s));
          el.disabled = s.remaining === 0;
          return el;
        }),
      )
    : null;
  const label = payable ? t("redeem", { points: formatNumber(price), program }) : t("redeemShort");
  const button = h(
    "button",
    {
      type: "button",
      class: "primary",
      testid: "redeem-button",
      disabled: !node.available || !payable,
    },
    label,
  );
  button.addEventListener("click", async () => {
    say(error, "");
    say(done, "");
    const slotId = slotSelect?.value || null;
    if (needsSlot && !slotId) {
      say(error, t("pickSlotFirst"), "PICK_SLOT");
      return;
    }
    attemptKey ??= idempotencyKey();
    button.disabled = true;
    button.textContent = t("working");
    await guarded(async () => {
      const data = await gql("RedeemReward", {
        input: {
          memberId: state.member.id,
          rewardId: node.id,
          payWith: program,
          slotId,
          quantity: 1,
          idempotencyKey: attemptKey,
        },
      });
      attemptKey = null;
      const payload = data.redeemReward;
      if (payload.userErrors.length > 0) {
        sayUserErrors(error, payload.userErrors);
        return;
      }
      const r = payload.redemption;
      const params = { points: formatNumber(r.points), program: r.paidWith.code, ref: r.fulfillmentRef };
      say(done, r.fulfillmentRef ? t("redeemed", params) : t("redeemedNoRef", params));
      done.dataset.redemptionId = r.id;
      done.dataset.points = String(r.points);
      await Promise.all([refreshMember(), loadRedemptions(true)]);
    }, error);
    button.disabled = false;
    button.textContent = label;
  });

  const ownPrice =
    own !== program || node.listPrice !== node.price
      ? h(
          "span",
          { class: "own-price muted" },
          t("ownPrice", { points: formatNumber(node.price), program: own }),
          node.listPrice !== node.price
            ? h("s", {}, ` ${t("listPrice", { points: formatNumber(node.listPrice) })}`)
            : null,
        )
      : null;
  let stock = null;
  if (!node.available) stock = h("span", { class: "badge sold", testid: "out-of-stock" }, t("outOfStock"));
  else if (node.stock !== null) stock = h("span", { class: "muted" }, t("inStock", { stock: node.stock }));

  return h(
    "article",
    {
      class: node.available ? "reward card" : "reward card sold-out",
      testid: "reward-card",
      dataset: { rewardId: node.id, kind: node.kind, available: node.available },
    },
    h(
      "div",
      { class: "reward-head" },
      h("span", { class: "badge" }, t(`kind.${node.kind}`)),
      h("span", { class: "merchant-name", testid: "reward-merchant" }, node.merchant.name),
    ),
    h("h3", { testid: "reward-title" }, node.title),
    node.description ? h("p", { class: "desc muted" }, node.description) : null,
    h(
      "div",
      { class: "price-row" },
      payable
        ? h(
            "span",
            { class: "price", testid: "reward-price", dataset: { points: price, program } },
            points(price, program),
          )
        : h(
            "span",
            { class: "price unpayable", testid: "reward-price", dataset: { program } },
            t("notPayable", { program }),
          ),
      ownPrice,
      stock,
    ),
    slotSelect ? h("label", { class: "slot" }, h("span", {}, t("slot")), slotSelect) : null,
    h("div", { class: "action-row" }, button, error),
    done,
  );
}

// ---------------------------------------------------------------- redemptions

async function loadRedemptions(reset) {
  const r = state.redemptions;
  if (reset) r.generation += 1;
  const generation = r.generation;
  const data = await gql("Redemptions", {
    first: REDEMPTIONS_PAGE,
    after: reset ? null : r.endCursor,
  });
  const connection = data.viewer.member?.redemptions;
  if (!connection || generation !== r.generation) return;
  const nodes = connection.edges.map((e) => e.node);
  r.nodes = reset ? nodes : [...r.nodes, ...nodes];
  r.endCursor = connection.pageInfo.endCursor;
  r.hasNextPage = connection.pageInfo.hasNextPage;
  renderRedemptions();
}

function renderRedemptions() {
  const r = state.redemptions;
  $("redemption-list").replaceChildren(...r.nodes.map(redemptionItem));
  $("redemptions-empty").hidden = r.nodes.length > 0;
  $("redemptions-more").hidden = !r.hasNextPage;
}

function redemptionItem(n) {
  const program = n.paidWith.code;
  let cancelKey = null;
  const error = h("span", { class: "error", testid: "cancel-error", role: "alert", hidden: true });
  const cancel = n.cancellable
    ? h("button", { type: "button", class: "danger", testid: "cancel-button" }, t("cancel"))
    : null;
  cancel?.addEventListener("click", async () => {
    say(error, "");
    cancelKey ??= idempotencyKey();
    cancel.disabled = true;
    cancel.textContent = t("cancelling");
    await guarded(async () => {
      const data = await gql("CancelRedemption", {
        input: { redemptionId: n.id, reason: "MEMBER_REQUEST", idempotencyKey: cancelKey },
      });
      cancelKey = null;
      const payload = data.cancelRedemption;
      if (payload.userErrors.length > 0) {
        sayUserErrors(error, payload.userErrors);
        return;
      }
      await Promise.all([refreshMember(), loadRedemptions(true)]);
    }, error);
    if (cancel.isConnected) {
      cancel.disabled = false;
      cancel.textContent = t("cancel");
    }
  });
  return h(
    "li",
    {
      class: `redemption status-${n.status.toLowerCase()}`,
      testid: "redemption",
      dataset: { redemptionId: n.id, status: n.status },
    },
    h(
      "div",
      { class: "r-head" },
      h("strong", { testid: "redemption-title" }, n.reward.title),
      h("span", { class: "status", testid: "redemption-status" }, t(`status.${n.status}`)),
    ),
    h(
      "div",
      { class: "muted" },
      n.reward.merchant.name,
      n.slot ? ` · ${formatDateTime(n.slot.startsAt)}` : "",
    ),
    h(
      "div",
      { class: "r-meta" },
      h("span", { testid: "redemption-points", dataset: { points: n.points } }, t("paid", { points: formatNumber(n.points), program })),
      n.fulfillmentRef ? h("span", { class: "muted" }, t("booking", { ref: n.fulfillmentRef })) : null,
    ),
    n.refundedPoints > 0
      ? h(
          "div",
          { class: "refund", testid: "redemption-refund", dataset: { points: n.refundedPoints } },
          t("refunded", { points: formatNumber(n.refundedPoints), program }),
        )
      : null,
    n.compensationPoints > 0
      ? h(
          "div",
          {
            class: "compensation",
            testid: "redemption-compensation",
            dataset: { points: n.compensationPoints },
          },
          t("compensation", { points: formatNumber(n.compensationPoints), program }),
        )
      : null,
    cancel ? h("div", { class: "action-row" }, cancel, error) : null,
  );
}

// ---------------------------------------------------------------- language and start

function switchLanguage(lang) {
  setLanguage(lang);
  for (const button of document.querySelectorAll("[data-lang]")) {
    button.setAttribute("aria-pressed", String(button.dataset.lang === language()));
  }
  if (!state.member) return;
  renderBalances();
  renderConvertForm();
  renderFilters();
  $("reward-grid").replaceChildren(...state.catalog.nodes.map(rewardCard));
  renderBanner();
  renderStatus();
  renderRedemptions();
  renderQuote();
}

const observer = new IntersectionObserver(
  (entries) => {
    if (entries.some((e) => e.isIntersecting)) loadMore();
  },
  { rootMargin: "0px 0px 400px 0px" },
);

async function start() {
  switchLanguage(initialLanguage());
  for (const button of document.querySelectorAll("[data-lang]")) {
    button.addEventListener("click", () => switchLanguage(button.dataset.lang));
  }
  $("sign-out").addEventListener("click", () => showSignIn());
  $("signin-form").addEventListener("submit", manualSignIn);
  $("quote-form").addEventListener("submit", requestQuote);
  $("quote-form").addEventListener("change", (event) => {
    clearQuote();
    if (event.target.name === "from") renderConvertForm();
  });
  $("convert-button").addEventListener("click", convert);
  const filters = $("filters");
  filters.addEventListener("change", (event) => {
    if (event.target.name !== "search") readFilters();
  });
  let typing = null;
  filters.search.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(readFilters, 300);
  });
  filters.addEventListener("submit", (event) => event.preventDefault());
  filters.addEventListener("reset", (event) => {
    event.preventDefault();
    state.filters = { ...emptyFilters(), priceIn: state.filters.priceIn };
    renderFilters();
    resetCatalog();
  });
  $("redemptions-more").addEventListener("click", () =>
    guarded(() => loadRedemptions(false), $("redemptions-error")),
  );
  observer.observe($("catalog-sentinel"));

  const saved = sessionStorage.getItem(SESSION_KEY);
  if (saved) {
    try {
      await signIn(JSON.parse(saved));
      return;
    } catch {
      await showSignIn(t("sessionExpired"));
      return;
    }
  }
  await showSignIn();
}

start();
