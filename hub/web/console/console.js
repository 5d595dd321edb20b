// The finance console: finance staff sign in with a FINANCE key, run the nightly
// settlement for a business date, read batches (net positions, payment instructions,
// statements), and take statements through DRAFT -> APPROVED or DISPUTED -> PAID.
// Plain browser JS against the hub's public GraphQL API; no build step.

import { TREND, renderTrend } from "./trend.js";

const ENDPOINT = new URL(
  document.querySelector('meta[name="hub-graphql"]')?.getAttribute("content") || "/graphql",
  location.href,
);
const TZ =
  document.querySelector('meta[name="hub-settlement-tz"]')?.getAttribute("content") ||
  "Asia/Shanghai";
const KEY_STORAGE = "console.financeKey";
const BATCH_PAGE = 20;
const LINES_PAGE = 25;

const MESSAGES = {
  badKey: "This key is not valid; ask an administrator for a FINANCE key.",
  wrongRole: (role) =>
    `This is ${/^[AEIOU]/.test(role) ? "an" : "a"} ${role} key; the finance console needs a ` +
    "FINANCE key. Ask an administrator for one.",
  forbidden: (message) =>
    `${message} The console needs a FINANCE key; sign out and sign in with one.`,
  network: "The hub did not answer. Check your connection, then try again.",
  signedOut: "You signed out. Sign in again with a FINANCE key to continue.",
};

// What each workflow action needs (the hub enforces the same; a refusal is shown as sent).
const ALLOWED = {
  approve: new Set(["DRAFT"]),
  dispute: new Set(["DRAFT", "APPROVED"]),
  pay: new Set(["APPROVED"]),
};
const STATUS_HINT = {
  DRAFT: "Draft: check the lines, then approve it, or dispute it with a reason.",
  APPROVED: "Approved: mark it paid once the transfer is made, or dispute it.",
  DISPUTED: "Disputed: answer the dispute below (accept with adjustments, or reject); it then returns to APPROVED.",
  PAID: "Paid: nothing more to do.",
};

// ---------------------------------------------------------------- GraphQL documents

const VIEWER = "query Viewer { viewer { role } }";

const BATCHES = `query Batches($first: Int!, $after: String) {
  settlementBatches(first: $first, after: $after) {
    edges { cursor node { id businessDate status currency obligationCount grossAmount createdAt } }
    pageInfo { hasNextPage endCursor }
  }
}`;

const BATCH = `query Batch($date: Date!) {
  settlementBatch(businessDate: $date) {
    id businessDate status currency obligationCount grossAmount createdAt
    positions { merchant { id name } receivable payable fees net }
    payments { from { id name } to { id name } amount }
    statements { id status merchant { id name } receivable payable fees net }
  }
  reconciliations(businessDate: $date) {
    merchant { id name } status matched generatedAt
    breaks { reference externalRef hubPoints partnerPoints }
  }
}`;

const BATCH_EXISTS = `query BatchExists($date: Date!) {
  settlementBatch(businessDate: $date) { id obligationCount }
}`;

const RUN = `mutation RunSettlement($date: Date!) {
  runSettlement(businessDate: $date) {
    batch { id businessDate currency obligationCount grossAmount statements { id } }
    userErrors { field message code }
  }
}`;

const LINES_FIELDS = `lines(first: $first, after: $after) {
  edges { cursor node {
    id kind reference points amount occurredAt counterparty { id name } program { code }
  } }
  pageInfo { hasNextPage endCursor }
}`;

const STATEMENT = `query Statement($id: ID!, $first: Int!, $after: String) {
  statement(id: $id) {
    id businessDate status receivable payable fees net disputeReason approvedAt paidReference
    resolution adjustments { id amount reason counterparty { id name } carriedTo { businessDate } }
    csvUrl merchant { id name } batch { id businessDate currency }
    counterparties { counterparty { id name } receivable payable }
    ${LINES_FIELDS}
  }
}`;

const STATEMENT_LINES = `query StatementLines($id: ID!, $first: Int!, $after: String) {
  statement(id: $id) { id ${LINES_FIELDS} }
}`;

const PAYLOAD = `statement { id status disputeReason approvedAt paidReference resolution
    adjustments { id amount reason counterparty { id name } carriedTo { businessDate } } }
  userErrors { field message code }`;
const RESOLVE = `mutation Resolve($input: ResolveDisputeInput!) {
  resolveDispute(input: $input) { ${PAYLOAD} }
}`;
const APPROVE = `mutation Approve($id: ID!, $note: String) {
  approveStatement(id: $id, note: $note) { ${PAYLOAD} }
}`;
const DISPUTE = `mutation Dispute($id: ID!, $reason: String!) {
  disputeStatement(id: $id, reason: $reason) { ${PAYLOAD} }
}`;
const PAY = `mutation Pay($id: ID!, $reference: String!) {
  markStatementPaid(id: $id, paymentReference: $reference) { ${PAYLOAD} }
}`;

// ---------------------------------------------------------------- state

const state = {
  key: null,
  batches: { nodes: [], endCursor: null, hasNextPage: false, generation: 0 },
  view: 0, // bumped on every navigation, so a slow answer for an old view is dropped
  statement: null,
  lines: { cursors: [null], page: 0, hasNextPage: false, count: 0 },
  pendingRun: null,
};

// ---------------------------------------------------------------- helpers

function $(testid, root = document) {
  return root.querySelector(`[data-testid="${testid}"]`);
}

/** An element; props: class, testid, dataset, on<event>, true/false attributes, others. */
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

/** Show `text` in a message element (hidden when empty); `code` goes to data-code. */
function say(el, text, code = "") {
  el.textContent = text || "";
  el.dataset.code = code || "";
  el.hidden = !text;
}

/** A failure to show: `message` says what happened and what to do next. */
class ConsoleError extends Error {
  constructor(message, code = null) {
    super(message);
    this.code = code;
  }
}

/** The key was refused (HTTP 401): back to sign-in. */
class KeyRefused extends ConsoleError {}

function authHeaders() {
  return state.key ? { Authorization: `Bearer ${state.key}` } : {};
}

/** POST a document; resolves to `data`, throws ConsoleError for anything but an answer. */
async function gql(query, variables = {}) {
  let response;
  try {
    response = await fetch(ENDPOINT, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...authHeaders() },
      body: JSON.stringify({ query, variables }),
    });
  } catch {
    throw new ConsoleError(MESSAGES.network, "NETWORK");
  }
  if (response.status === 401) throw new KeyRefused(MESSAGES.badKey, "UNAUTHENTICATED");
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON: a proxy's error page, say; reported below by status.
  }
  const first = body?.errors?.[0];
  if (first) {
    const code = first.extensions?.code ?? null;
    if (code === "FORBIDDEN") throw new ConsoleError(MESSAGES.forbidden(first.message), code);
    throw new ConsoleError(first.message, code);
  }
  if (!response.ok || !body?.data) {
    throw new ConsoleError(
      `The hub answered HTTP ${response.status}. Try again in a minute; if it persists, ` +
        "tell the hub's operators.",
      "HTTP",
    );
  }
  return body.data;
}

/** Run `action`; a refused key signs out, any other failure is shown in `errorEl`. */
async function guarded(action, errorEl) {
  if (errorEl) say(errorEl, "");
  try {
    return await action();
  } catch (error) {
    if (error instanceof KeyRefused) {
      showSignIn(error.message);
      return undefined;
    }
    if (!(error instanceof ConsoleError)) console.error(error);
    if (errorEl) say(errorEl, error.message || String(error), error.code);
    return undefined;
  }
}

async function busy(button, action) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await action();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

// Money arrives as strings with 2 decimals; it is added in integer cents, never floats.
function cents(value) {
  const text = String(value).trim();
  const negative = text.startsWith("-");
  const [whole, fraction = ""] = text.replace(/^[-+]/, "").split(".");
  const amount = BigInt(whole || "0") * 100n + BigInt(`${fraction}00`.slice(0, 2));
  return negative ? -amount : amount;
}

function fromCents(amount) {
  const negative = amount < 0n;
  const abs = negative ? -amount : amount;
  return `${negative ? "-" : ""}${abs / 100n}.${String(abs % 100n).padStart(2, "0")}`;
}

function sum(values) {
  return values.reduce((total, v) => total + cents(v), 0n);
}

/** "-1234.50" -> "-1,234.50": grouped for reading, same digits. */
function formatMoney(value) {
  const text = fromCents(cents(value));
  const negative = text.startsWith("-");
  const [whole, fraction] = text.replace("-", "").split(".");
  return `${negative ? "-" : ""}${whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",")}.${fraction}`;
}

function moneyCell(value, testid = null, extra = "") {
  const amount = cents(value);
  const tone = amount < 0n ? " negative" : amount > 0n ? " positive" : " zero";
  return h(
    "td",
    { class: `num money${tone}${extra}`, testid, dataset: { amount: fromCents(amount) } },
    formatMoney(value),
  );
}

const numberFormat = new Intl.NumberFormat("en-US");
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

function formatDateTime(iso) {
  return iso ? dateTimeFormat.format(new Date(iso)) : "";
}

/** Today's business date in the settlement time zone, as YYYY-MM-DD. */
function todayInTz() {
  return dateFormat.format(new Date());
}

function plural(count, noun) {
  return `${numberFormat.format(count)} ${noun}${count === 1 ? "" : "s"}`;
}

function kindLabel(kind) {
  return kind.charAt(0) + kind.slice(1).toLowerCase();
}

function badge(status, testid = null) {
  return h("span", { class: `badge status-${status.toLowerCase()}`, testid }, status);
}

/** A merchant's name and id; with `href`, the name links there. */
function merchantCell(merchant, href = null) {
  return h(
    "td",
    { class: "merchant", dataset: { merchant: merchant.id } },
    href
      ? h("a", { class: "name", href }, merchant.name)
      : h("span", { class: "name" }, merchant.name),
    h("span", { class: "id" }, merchant.id),
  );
}

function figure(label, value, testid, tone = "") {
  return h(
    "div",
    { class: `figure ${tone}`.trim() },
    h("dt", {}, label),
    h("dd", { testid }, value),
  );
}

function moneyFigure(label, amount, testid, tone = "") {
  const el = figure(label, formatMoney(amount), testid, `money-figure ${tone}`);
  el.querySelector("dd").dataset.amount = fromCents(cents(amount));
  return el;
}

// ---------------------------------------------------------------- sign-in

function showSignIn(message = "") {
  state.key = null;
  sessionStorage.removeItem(KEY_STORAGE);
  const generation = state.batches.generation + 1; // an answer still on its way is dropped
  state.batches = { nodes: [], endCursor: null, hasNextPage: false, generation };
  state.statement = null;
  state.view += 1;
  $("console").hidden = true;
  $("who").hidden = true;
  $("signin").hidden = false;
  say($("signin-message"), "");
  say($("signin-error"), message);
  $("signin-form").reset();
  $("signin-key").focus();
}

/** Check the key with the hub (viewer.role); resolves when the console is open. */
async function signIn(key) {
  state.key = key;
  let data;
  try {
    data = await gql(VIEWER);
  } catch (error) {
    state.key = null;
    throw error;
  }
  const role = data.viewer.role;
  if (role !== "FINANCE") {
    state.key = null;
    throw new ConsoleError(MESSAGES.wrongRole(role), "WRONG_ROLE");
  }
  sessionStorage.setItem(KEY_STORAGE, key);
  $("signin").hidden = true;
  $("who").hidden = false;
  $("who-key").textContent = `key …${key.slice(-4)}`;
  $("console").hidden = false;
  resetRunForm();
  await reloadBatches();
  await route();
}

async function onSignIn(event) {
  event.preventDefault();
  const key = event.currentTarget.key.value.trim();
  say($("signin-message"), "");
  await busy($("signin-submit"), async () => {
    try {
      await signIn(key);
    } catch (error) {
      if (!(error instanceof ConsoleError)) console.error(error);
      say($("signin-error"), error.message, error.code);
    }
  });
}

function signOut() {
  showSignIn();
  say($("signin-message"), MESSAGES.signedOut);
  history.replaceState(null, "", location.pathname + location.search);
}

// ---------------------------------------------------------------- batches list

/** The trend card: last 30 batches and open disputes; a failure here never blocks the rest. */
async function refreshTrend() {
  await guarded(async () => renderTrend($("trend"), await gql(TREND), h), $("trend-error"));
}

async function reloadBatches() {
  state.batches = {
    nodes: [],
    endCursor: null,
    hasNextPage: false,
    generation: state.batches.generation + 1,
  };
  renderBatchList();
  await Promise.all([guarded(() => loadBatches(), $("batches-error")), refreshTrend()]);
}

async function loadBatches() {
  const list = state.batches;
  const generation = list.generation;
  const data = await gql(BATCHES, { first: BATCH_PAGE, after: list.endCursor });
  if (generation !== state.batches.generation) return;
  const page = data.settlementBatches;
  list.nodes.push(...page.edges.map((e) => e.node));
  list.endCursor = page.pageInfo.endCursor;
  list.hasNextPage = page.pageInfo.hasNextPage;
  renderBatchList();
}

function renderBatchList() {
  const { nodes, hasNextPage } = state.batches;
  const current = currentRoute();
  const selected = current.kind === "batch" ? current.value : state.statement?.businessDate;
  $("batch-list").replaceChildren(
    ...nodes.map((batch) =>
      h(
        "li",
        {},
        h(
          "a",
          {
            href: `#/batches/${batch.businessDate}`,
            class: "batch-item",
            testid: "batch-item",
            dataset: { date: batch.businessDate, status: batch.status },
            "aria-current": batch.businessDate === selected ? "page" : null,
          },
          h("span", { class: "date" }, batch.businessDate),
          h(
            "span",
            { class: "count" },
            plural(batch.obligationCount, "obligation"),
          ),
          h(
            "span",
            { class: "gross", dataset: { amount: batch.grossAmount } },
            `${formatMoney(batch.grossAmount)} ${batch.currency}`,
          ),
        ),
      ),
    ),
  );
  $("batches-empty").hidden = nodes.length > 0 || hasNextPage;
  $("batches-more").hidden = !hasNextPage;
}

// ---------------------------------------------------------------- run settlement

function resetRunForm() {
  const today = todayInTz();
  const input = $("run-date");
  input.value = today;
  input.max = today;
  $("run-tz").textContent = TZ;
  hideRunConfirm();
  say($("run-error"), "");
  say($("run-result"), "");
}

function hideRunConfirm() {
  state.pendingRun = null;
  $("run-confirm").hidden = true;
  $("run-form").hidden = false;
}

async function onRunSubmit(event) {
  event.preventDefault();
  const date = $("run-date").value;
  say($("run-result"), "");
  say($("run-error"), "");
  const today = todayInTz();
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) {
    say($("run-error"), "Pick a business date (YYYY-MM-DD).", "INVALID_INPUT");
    return;
  }
  if (date > today) {
    say(
      $("run-error"),
      `${date} has not begun in ${TZ}; pick today (${today}) or an earlier date.`,
      "INVALID_INPUT",
    );
    return;
  }
  await busy($("run-button"), () =>
    guarded(async () => {
      const found = (await gql(BATCH_EXISTS, { date })).settlementBatch;
      if (found) {
        say(
          $("run-result"),
          `${date} is already settled (${plural(found.obligationCount, "obligation")}); ` +
            "nothing changed. " +
            "Obligations that arrive late go into the next date's batch.",
        );
        navigate(`#/batches/${date}`);
        return;
      }
      state.pendingRun = date;
      const warning =
        date === today
          ? ` The day is not over in ${TZ}: obligations after this run go into the next ` +
            "date's batch."
          : "";
      $("run-confirm-text").textContent =
        `Settle ${date}? This closes the date and writes one statement per merchant with ` +
        `activity; it cannot be reopened.${warning}`;
      $("run-confirm-button").textContent = `Settle ${date}`;
      $("run-form").hidden = true;
      $("run-confirm").hidden = false;
      $("run-confirm-button").focus();
    }, $("run-error")),
  );
}

async function onRunConfirm() {
  const date = state.pendingRun;
  if (!date) return;
  await busy($("run-confirm-button"), () =>
    guarded(async () => {
      const payload = (await gql(RUN, { date })).runSettlement;
      hideRunConfirm();
      if (payload.userErrors.length > 0) {
        const first = payload.userErrors[0];
        say($("run-error"), payload.userErrors.map((e) => e.message).join(" "), first.code);
        return;
      }
      const batch = payload.batch;
      say(
        $("run-result"),
        `Settled ${batch.businessDate}: ${plural(batch.obligationCount, "obligation")}, gross ` +
          `${formatMoney(batch.grossAmount)} ${batch.currency}, ` +
          `${plural(batch.statements.length, "statement")} in DRAFT.`,
      );
      await reloadBatches();
      navigate(`#/batches/${batch.businessDate}`, true);
    }, $("run-error")),
  );
}

// ---------------------------------------------------------------- routing

function currentRoute() {
  const match = /^#\/(batches|statements)\/(.+)$/.exec(location.hash);
  if (!match) return { kind: "home", value: null };
  return {
    kind: match[1] === "batches" ? "batch" : "statement",
    value: decodeURIComponent(match[2]),
  };
}

/** Go to `hash`; when already there, `reload` shows it afresh. */
function navigate(hash, reload = false) {
  if (location.hash === hash) {
    if (reload) route();
  } else {
    location.hash = hash;
  }
}

function showOnly(name) {
  for (const view of ["nothing", "batch-view", "statement-view"]) $(view).hidden = view !== name;
}

/** Show the view the address names; `moved`: the user navigated, so bring it into sight. */
async function route(moved = false) {
  if (!state.key) return;
  const view = ++state.view;
  say($("view-error"), "");
  const { kind, value } = currentRoute();
  renderBatchList();
  if (kind === "batch") await guarded(() => showBatch(value, view), $("view-error"));
  else if (kind === "statement") await guarded(() => showStatement(value, view), $("view-error"));
  else {
    const newest = state.batches.nodes[0];
    if (newest) history.replaceState(null, "", `#/batches/${newest.businessDate}`);
    if (newest) await guarded(() => showBatch(newest.businessDate, view), $("view-error"));
    else showOnly("nothing");
  }
  renderBatchList();
  if (moved && view === state.view) {
    const views = ["batch-view", "statement-view", "nothing"].map((id) => $(id));
    views.find((el) => !el.hidden)?.scrollIntoView({ block: "start" });
  }
}

// ---------------------------------------------------------------- batch view

async function showBatch(date, view) {
  const data = await gql(BATCH, { date });
  const batch = data.settlementBatch;
  if (view !== state.view) return;
  if (!batch) {
    showOnly(null);
    say(
      $("view-error"),
      `No batch for ${date} yet. Run settlement for that date to create one.`,
      "NOT_FOUND",
    );
    $("run-date").value = date <= todayInTz() ? date : todayInTz();
    return;
  }
  renderBatch(batch);
  renderReconciliations(data.reconciliations || []);
  showOnly("batch-view");
  document.title = `Batch ${batch.businessDate} · Finance console`;
}

// The nightly run reconciles each connected partner before settling; its breaks, per merchant.
function renderReconciliations(reports) {
  const points = (value) => (value === null ? "—" : numberFormat.format(value));
  const rows = [];
  for (const r of [...reports].sort((a, b) => a.merchant.name.localeCompare(b.merchant.name))) {
    const summary =
      r.status === "PARTNER_UNAVAILABLE"
        ? "the partner did not list its movements"
        : `${plural(r.matched, "movement")} matched, ${plural(r.breaks.length, "break")}`;
    rows.push(
      h(
        "tr",
        { testid: "reconciliation-row", dataset: { merchant: r.merchant.id, status: r.status } },
        merchantCell(r.merchant),
        h("td", {}, badge(r.status, "reconciliation-status")),
        h("td", { colspan: "3" }, summary),
      ),
    );
    for (const b of r.breaks) {
      rows.push(
        h(
          "tr",
          { class: "break", testid: "reconciliation-break", dataset: { reference: b.reference } },
          h("td", { class: "mono" }, b.reference),
          h("td", {}, b.externalRef),
          h("td", { class: "num" }, points(b.hubPoints)),
          h("td", { class: "num" }, points(b.partnerPoints)),
          h(
            "td",
            {},
            b.partnerPoints === null
              ? "only at the hub"
              : b.hubPoints === null
                ? "only at the partner"
                : "other points",
          ),
        ),
      );
    }
  }
  $("reconciliations").tBodies[0].replaceChildren(...rows);
  $("reconciliations").hidden = reports.length === 0;
  $("reconciliations-empty").hidden = reports.length > 0;
}

function renderBatch(batch) {
  $("batch-date").textContent = batch.businessDate;
  $("batch-status").replaceWith(badge(batch.status, "batch-status"));
  $("batch-meta").textContent =
    `${batch.id} · settled ${formatDateTime(batch.createdAt)} · amounts in ${batch.currency}`;
  $("batch-figures").replaceChildren(
    figure("Obligations", numberFormat.format(batch.obligationCount), "batch-obligations"),
    moneyFigure(`Gross (${batch.currency})`, batch.grossAmount, "batch-gross"),
    figure("Statements", String(batch.statements.length), "batch-statement-count"),
    figure("Transfers", String(batch.payments.length), "batch-transfer-count"),
  );

  const positions = [...batch.positions].sort((a, b) =>
    a.merchant.name.localeCompare(b.merchant.name),
  );
  const table = $("positions");
  table.tBodies[0].replaceChildren(
    ...positions.map((p) =>
      h(
        "tr",
        { testid: "position-row", dataset: { merchant: p.merchant.id } },
        merchantCell(p.merchant),
        moneyCell(p.receivable, "position-receivable"),
        moneyCell(p.payable, "position-payable"),
        moneyCell(p.fees, "position-fees"),
        moneyCell(p.net, "position-net", " strong"),
      ),
    ),
  );
  table.hidden = positions.length === 0;
  $("positions-empty").hidden = positions.length > 0;
  const netTotal = sum(positions.map((p) => p.net));
  table.tFoot.replaceChildren(
    h(
      "tr",
      { testid: "positions-total" },
      h(
        "th",
        { scope: "row" },
        "Total ",
        h(
          "span",
          { class: netTotal === 0n ? "check ok" : "check bad", testid: "positions-balanced" },
          netTotal === 0n ? "✓ nets sum to zero" : "✗ nets do not sum to zero: tell the operators",
        ),
      ),
      moneyCell(fromCents(sum(positions.map((p) => p.receivable))), "positions-receivable-total"),
      moneyCell(fromCents(sum(positions.map((p) => p.payable))), "positions-payable-total"),
      moneyCell(fromCents(sum(positions.map((p) => p.fees))), "positions-fees-total"),
      moneyCell(fromCents(netTotal), "positions-net-total", " strong"),
    ),
  );

  $("payments").tBodies[0].replaceChildren(
    ...batch.payments.map((p) =>
      h(
        "tr",
        { testid: "payment-row", dataset: { from: p.from.id, to: p.to.id } },
        merchantCell(p.from),
        h("td", { class: "arrow", "aria-hidden": "true" }, "→"),
        merchantCell(p.to),
        moneyCell(p.amount, "payment-amount", " strong"),
      ),
    ),
  );
  $("payments").hidden = batch.payments.length === 0;
  $("payments-empty").hidden = batch.payments.length > 0;

  const statements = [...batch.statements].sort((a, b) =>
    a.merchant.name.localeCompare(b.merchant.name),
  );
  $("batch-statements").tBodies[0].replaceChildren(
    ...statements.map((s) => {
      const href = `#/statements/${encodeURIComponent(s.id)}`;
      return h(
        "tr",
        {
          testid: "statement-row",
          dataset: { merchant: s.merchant.id, status: s.status, id: s.id },
        },
        merchantCell(s.merchant, href),
        h("td", {}, badge(s.status, "statement-row-status")),
        moneyCell(s.receivable),
        moneyCell(s.payable),
        moneyCell(s.fees),
        moneyCell(s.net, null, " strong"),
        h(
          "td",
          { class: "open" },
          h("a", { href, class: "button-link", testid: "open-statement" }, "Open"),
        ),
      );
    }),
  );
  $("batch-statements").hidden = statements.length === 0;
  $("statements-empty").hidden = statements.length > 0;
}

// ---------------------------------------------------------------- statement view

async function showStatement(id, view) {
  const statement = (await gql(STATEMENT, { id, first: LINES_PAGE, after: null })).statement;
  if (view !== state.view) return;
  if (!statement) {
    showOnly(null);
    say(
      $("view-error"),
      `No statement ${id} is visible to this key. Check the link, or pick a batch on the left.`,
      "NOT_FOUND",
    );
    return;
  }
  state.statement = statement;
  state.lines = { cursors: [null], page: 0, hasNextPage: false, count: 0 };
  say($("action-error"), "");
  say($("action-result"), "");
  say($("csv-error"), "");
  say($("csv-result"), "");
  for (const form of ["approve-form", "dispute-form", "pay-form", "resolve-form"]) {
    $(form).reset();
  }
  $("adjustment-lines").replaceChildren();
  renderStatement();
  renderLines(statement.lines);
  showOnly("statement-view");
  document.title = `${statement.merchant.name} ${statement.businessDate} · Finance console`;
}

function renderStatement() {
  const s = state.statement;
  const back = $("back-to-batch");
  back.href = `#/batches/${s.batch.businessDate}`;
  back.textContent = `← Batch ${s.batch.businessDate}`;
  $("statement-merchant").textContent = s.merchant.name;
  $("statement-date").textContent = s.businessDate;
  $("statement-status").replaceWith(badge(s.status, "statement-status"));
  const meta = [`${s.id}`, `merchant ${s.merchant.id}`, `amounts in ${s.batch.currency}`];
  if (s.approvedAt) meta.push(`approved ${formatDateTime(s.approvedAt)}`);
  if (s.paidReference) meta.push(`paid, reference ${s.paidReference}`);
  $("statement-meta").textContent = meta.join(" · ");
  const dispute = $("statement-dispute");
  dispute.textContent = s.status === "DISPUTED" ? `Disputed: ${s.disputeReason ?? ""}` : "";
  dispute.hidden = s.status !== "DISPUTED";
  const net = cents(s.net);
  $("statement-figures").replaceChildren(
    moneyFigure("Receivable", s.receivable, "statement-receivable"),
    moneyFigure("Payable", s.payable, "statement-payable"),
    moneyFigure("Fees", s.fees, "statement-fees"),
    moneyFigure(
      net < 0n ? "Net (merchant pays)" : net > 0n ? "Net (merchant receives)" : "Net",
      s.net,
      "statement-net",
      net < 0n ? "negative" : "",
    ),
  );
  renderActions();
  renderAdjustments();

  const rows = [...s.counterparties].sort((a, b) =>
    a.counterparty.name.localeCompare(b.counterparty.name),
  );
  const table = $("counterparties");
  table.tBodies[0].replaceChildren(
    ...rows.map((c) =>
      h(
        "tr",
        { testid: "counterparty-row", dataset: { counterparty: c.counterparty.id } },
        merchantCell(c.counterparty),
        moneyCell(c.receivable, "counterparty-receivable"),
        moneyCell(c.payable, "counterparty-payable"),
        moneyCell(fromCents(cents(c.receivable) - cents(c.payable)), "counterparty-net", " strong"),
      ),
    ),
  );
  const receivable = sum(rows.map((c) => c.receivable));
  const payable = sum(rows.map((c) => c.payable));
  table.tFoot.replaceChildren(
    h(
      "tr",
      {},
      h("th", { scope: "row" }, "Total"),
      moneyCell(fromCents(receivable)),
      moneyCell(fromCents(payable)),
      moneyCell(fromCents(receivable - payable), null, " strong"),
    ),
  );
}

function renderActions() {
  const s = state.statement;
  let hint = STATUS_HINT[s.status] ?? "";
  if (s.status === "PAID" && s.paidReference) hint = `Paid (reference ${s.paidReference}).`;
  $("actions-hint").textContent = hint;
  const forms = { approve: "approve-form", dispute: "dispute-form", pay: "pay-form" };
  const needs = {
    approve: "Approve needs the statement DRAFT; a dispute is answered below.",
    dispute: "Dispute needs the statement DRAFT or APPROVED.",
    pay: "Mark paid needs the statement APPROVED.",
  };
  for (const [action, testid] of Object.entries(forms)) {
    const form = $(testid);
    const allowed = ALLOWED[action].has(s.status);
    form.classList.toggle("unavailable", !allowed);
    form.title = allowed ? "" : needs[action];
    for (const control of form.elements) control.disabled = !allowed;
  }
}

function renderAdjustments() {
  const s = state.statement;
  $("resolve-form").hidden = s.status !== "DISPUTED";
  const card = $("adjustments-card");
  card.hidden = !s.resolution && s.adjustments.length === 0;
  $("statement-resolution").textContent = s.resolution ? `Resolution: ${s.resolution}` : "";
  $("adjustments").tBodies[0].replaceChildren(
    ...s.adjustments.map((a) =>
      h(
        "tr",
        { testid: "adjustment-row" },
        merchantCell(a.counterparty),
        h("td", {}, a.reason),
        h(
          "td",
          { testid: "adjustment-carried" },
          a.carriedTo
            ? h("a", { href: `#/batches/${a.carriedTo.businessDate}` }, a.carriedTo.businessDate)
            : "the next batch",
        ),
        moneyCell(a.amount, "adjustment-amount", " strong"),
      ),
    ),
  );
}

/** One adjustment line of the resolve form: a counterparty of this statement, an amount. */
function addAdjustmentLine() {
  const s = state.statement;
  if (!s) return;
  const options = s.counterparties.map((c) =>
    h("option", { value: c.counterparty.id }, c.counterparty.name),
  );
  const remove = h("button", { type: "button", class: "link" }, "Remove");
  const line = h(
    "div",
    { class: "adjustment-line", testid: "adjustment-line" },
    h("label", {}, h("span", {}, "Counterparty"),
      h("select", { name: "counterparty", testid: "adjustment-counterparty" }, ...options)),
    h("label", {}, h("span", {}, "Amount (+ the merchant receives)"),
      h("input", { name: "amount", testid: "adjustment-amount-input", inputmode: "decimal",
        placeholder: "12.50", required: true })),
    h("label", { class: "grow" }, h("span", {}, "Reason"),
      h("input", { name: "reason", testid: "adjustment-reason", maxlength: "2000",
        required: true })),
    remove,
  );
  remove.addEventListener("click", () => line.remove());
  $("adjustment-lines").append(line);
  line.querySelector("input").focus();
}

async function onResolve(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const s = state.statement;
  if (!s) return;
  const resolution = form.resolution.value;
  const note = form.note.value.trim();
  const adjustments = [...$("adjustment-lines").children].map((line) => ({
    counterparty: line.querySelector("select").value,
    amount: line.querySelector('[name="amount"]').value.trim(),
    reason: line.querySelector('[name="reason"]').value.trim(),
  }));
  say($("action-result"), "");
  if (!note) {
    say($("action-error"), "Write a note: the merchant sees the answer.", "INVALID_INPUT");
    form.note.focus();
    return;
  }
  const button = form.querySelector('button[type="submit"]');
  await busy(button, () =>
    guarded(async () => {
      const input = { statementId: s.id, resolution, note, adjustments };
      const payload = (await gql(RESOLVE, { input })).resolveDispute;
      if (state.statement !== s) return;
      if (payload.userErrors.length > 0) {
        say(
          $("action-error"),
          payload.userErrors.map((e) => e.message).join(" "),
          payload.userErrors[0].code,
        );
        return;
      }
      Object.assign(s, payload.statement);
      form.reset();
      $("adjustment-lines").replaceChildren();
      renderStatement();
      refreshTrend();
      say(
        $("action-result"),
        `Resolved (${resolution.toLowerCase()}). The statement is now ${s.status}.`,
        s.status,
      );
    }, $("action-error")),
  );
}

function renderLines(connection) {
  const edges = connection.edges;
  const lines = state.lines;
  lines.hasNextPage = connection.pageInfo.hasNextPage;
  lines.endCursor = connection.pageInfo.endCursor;
  lines.count = edges.length;
  $("lines").tBodies[0].replaceChildren(
    ...edges.map(({ node }) =>
      h(
        "tr",
        { testid: "line-row", dataset: { id: node.id, kind: node.kind } },
        h("td", { class: "nowrap" }, formatDateTime(node.occurredAt)),
        h("td", {}, kindLabel(node.kind)),
        merchantCell(node.counterparty),
        h("td", { class: "ref", title: node.reference }, node.reference),
        h("td", {}, node.program.code),
        h("td", { class: "num" }, numberFormat.format(node.points)),
        moneyCell(node.amount, "line-amount"),
      ),
    ),
  );
  const start = lines.page * LINES_PAGE;
  $("lines-range").textContent =
    edges.length === 0
      ? ""
      : `Lines ${start + 1}–${start + edges.length}${lines.hasNextPage ? "" : " (end)"}`;
  $("lines").hidden = edges.length === 0 && lines.page === 0;
  $("lines-empty").hidden = !(edges.length === 0 && lines.page === 0);
  $("lines-prev").disabled = lines.page === 0;
  $("lines-next").disabled = !lines.hasNextPage;
  $("lines-prev").parentElement.hidden = lines.page === 0 && !lines.hasNextPage;
}

async function turnLinesPage(step) {
  const s = state.statement;
  if (!s) return;
  const lines = state.lines;
  const page = lines.page + step;
  if (page < 0 || (step > 0 && !lines.hasNextPage)) return;
  if (step > 0) lines.cursors[page] = lines.endCursor;
  const view = state.view;
  const data = await gql(STATEMENT_LINES, {
    id: s.id,
    first: LINES_PAGE,
    after: lines.cursors[page],
  });
  if (view !== state.view || !data.statement) return;
  lines.page = page;
  renderLines(data.statement.lines);
  $("lines").scrollIntoView({ block: "nearest" });
}

// ---------------------------------------------------------------- workflow actions

const ACTIONS = {
  approve: {
    document: APPROVE,
    field: "approveStatement",
    done: "Approved",
    variables: (form) => ({ note: form.note.value.trim() || null }),
  },
  dispute: {
    document: DISPUTE,
    field: "disputeStatement",
    done: "Disputed",
    missing: "Write the reason for the dispute; the merchant sees it.",
    variables: (form) => ({ reason: form.reason.value.trim() }),
  },
  pay: {
    document: PAY,
    field: "markStatementPaid",
    done: "Marked paid",
    missing: "Enter the payment reference of the transfer (as on the bank statement).",
    variables: (form) => ({ reference: form.reference.value.trim() }),
  },
};

async function onAction(event, name) {
  event.preventDefault();
  const form = event.currentTarget;
  const action = ACTIONS[name];
  const s = state.statement;
  if (!s) return;
  const variables = { id: s.id, ...action.variables(form) };
  say($("action-result"), "");
  if (action.missing && Object.values(variables).includes("")) {
    say($("action-error"), action.missing, "INVALID_INPUT");
    form.querySelector("input")?.focus();
    return;
  }
  const button = form.querySelector("button");
  await busy(button, () =>
    guarded(async () => {
      const payload = (await gql(action.document, variables))[action.field];
      if (state.statement !== s) return; // the user has moved on to another view
      if (payload.userErrors.length > 0) {
        const stale = payload.userErrors.some((e) => e.code === "INVALID_STATE");
        const message = payload.userErrors.map((e) => e.message).join(" ");
        if (stale) await refreshStatement();
        say(
          $("action-error"),
          stale ? `${message} The statement's current status is shown above.` : message,
          payload.userErrors[0].code,
        );
        return;
      }
      Object.assign(s, payload.statement);
      form.reset();
      renderStatement();
      refreshTrend();
      say(
        $("action-result"),
        `${action.done}. The statement is now ${payload.statement.status}.`,
        payload.statement.status,
      );
    }, $("action-error")),
  );
  if (state.statement) renderActions(); // busy() re-enabled the button; the status decides
}

/** Fetch the statement's workflow fields again (another user may have moved it). */
async function refreshStatement() {
  const s = state.statement;
  const fresh = (await gql(STATEMENT, { id: s.id, first: 1, after: null })).statement;
  if (!fresh || state.statement !== s) return;
  const { lines: _ignored, ...fields } = fresh;
  Object.assign(s, fields);
  renderStatement();
}

// ---------------------------------------------------------------- CSV

async function downloadCsv() {
  const s = state.statement;
  if (!s) return;
  const url = new URL(s.csvUrl, ENDPOINT);
  let response;
  try {
    response = await fetch(url, { headers: authHeaders() });
  } catch {
    throw new ConsoleError(MESSAGES.network, "NETWORK");
  }
  if (response.status === 401) throw new KeyRefused(MESSAGES.badKey, "UNAUTHENTICATED");
  if (!response.ok) {
    let detail = `HTTP ${response.status}`;
    try {
      detail = (await response.json()).error || detail;
    } catch {
      // keep the status
    }
    throw new ConsoleError(`The CSV could not be downloaded (${detail}). Try again.`, "CSV");
  }
  const blob = await response.blob();
  const disposition = response.headers.get("Content-Disposition") || "";
  const named = /filename="?([^";]+)"?/.exec(disposition);
  const filename = named ? named[1] : `statement-${s.merchant.id}-${s.businessDate}.csv`;
  const href = URL.createObjectURL(blob);
  const link = h("a", { href, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  // The browser has read the blob once the click is handled; free it a little later.
  setTimeout(() => URL.revokeObjectURL(href), 30_000);
  say($("csv-result"), `Downloaded ${filename}.`, "CSV");
}

// ---------------------------------------------------------------- start

function wire() {
  $("signin-form").addEventListener("submit", onSignIn);
  $("sign-out").addEventListener("click", signOut);
  $("run-form").addEventListener("submit", onRunSubmit);
  $("run-confirm-button").addEventListener("click", onRunConfirm);
  $("run-cancel").addEventListener("click", () => {
    hideRunConfirm();
    $("run-button").focus();
  });
  $("batches-more").addEventListener("click", (event) =>
    busy(event.currentTarget, () => guarded(loadBatches, $("batches-error"))),
  );
  $("batches-refresh").addEventListener("click", (event) =>
    busy(event.currentTarget, async () => {
      await reloadBatches();
      await route();
    }),
  );
  $("approve-form").addEventListener("submit", (event) => onAction(event, "approve"));
  $("resolve-form").addEventListener("submit", onResolve);
  $("adjustment-add").addEventListener("click", addAdjustmentLine);
  $("dispute-form").addEventListener("submit", (event) => onAction(event, "dispute"));
  $("pay-form").addEventListener("submit", (event) => onAction(event, "pay"));
  $("csv-download").addEventListener("click", (event) => {
    say($("csv-result"), "");
    return busy(event.currentTarget, () => guarded(downloadCsv, $("csv-error")));
  });
  $("lines-prev").addEventListener("click", () =>
    guarded(() => turnLinesPage(-1), $("lines-error")),
  );
  $("lines-next").addEventListener("click", () =>
    guarded(() => turnLinesPage(1), $("lines-error")),
  );
  window.addEventListener("hashchange", () => route(true));
  $("footer-tz").textContent = TZ;
}

async function start() {
  wire();
  const key = sessionStorage.getItem(KEY_STORAGE);
  if (!key) {
    showSignIn();
    return;
  }
  try {
    await signIn(key);
  } catch (error) {
    showSignIn(error.message);
  }
}

start().finally(() => {
  document.body.dataset.ready = "true";
});
