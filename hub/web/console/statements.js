// One statement: its figures, counterparties and lines (a page at a time); the workflow
// panel is drawn by workflow.js, its actions are in actions.js and disputes.js.

import { $, h, say } from "/assets/dom.js";
import { cents, fromCents, sum } from "/assets/money.js";
import { fillTable } from "/assets/report.js";
import { gql } from "./api.js";
import { LINES_PAGE, state } from "./state.js";
import {
  badge,
  byName,
  formatDateTime,
  kindLabel,
  merchantCell,
  moneyCell,
  moneyFigure,
  numberFormat,
  showOnly,
} from "./ui.js";
import { renderActions, renderAdjustments } from "./workflow.js";

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

/** What a workflow mutation answers: the statement's workflow fields, and userErrors. */
export const STATEMENT_PAYLOAD = `statement {
    id status disputeReason approvedAt paidReference resolution
    adjustments { id amount reason counterparty { id name } carriedTo { businessDate } } }
  userErrors { field message code }`;

export async function showStatement(id, view) {
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

const COUNTERPARTIES = [
  { heading: "Counterparty", cell: (c) => merchantCell(c.counterparty) },
  {
    heading: "Receivable",
    num: true,
    cell: (c) => moneyCell(c.receivable, "counterparty-receivable"),
  },
  { heading: "Payable", num: true, cell: (c) => moneyCell(c.payable, "counterparty-payable") },
  {
    heading: "Bilateral net",
    num: true,
    cell: (c) =>
      moneyCell(fromCents(cents(c.receivable) - cents(c.payable)), "counterparty-net", " strong"),
  },
];

const LINES = [
  { heading: "Occurred", cell: (l) => h("td", { class: "nowrap" }, formatDateTime(l.occurredAt)) },
  { heading: "Kind", cell: (l) => h("td", {}, kindLabel(l.kind)) },
  { heading: "Counterparty", cell: (l) => merchantCell(l.counterparty) },
  { heading: "Reference", cell: (l) => h("td", { class: "ref", title: l.reference }, l.reference) },
  { heading: "Program", cell: (l) => h("td", {}, l.program.code) },
  { heading: "Points", num: true, cell: (l) => h("td", {}, numberFormat.format(l.points)) },
  { heading: "Amount", num: true, cell: (l) => moneyCell(l.amount, "line-amount") },
];

export function renderStatement() {
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

  const rows = byName(s.counterparties, (c) => c.counterparty);
  const table = fillTable("counterparties", COUNTERPARTIES, rows, {
    row: (c) => ({ testid: "counterparty-row", dataset: { counterparty: c.counterparty.id } }),
  });
  const receivable = sum(rows.map((c) => c.receivable));
  const payable = sum(rows.map((c) => c.payable));
  table.createTFoot().replaceChildren(
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

function renderLines(connection) {
  const edges = connection.edges;
  const lines = state.lines;
  lines.hasNextPage = connection.pageInfo.hasNextPage;
  lines.endCursor = connection.pageInfo.endCursor;
  lines.count = edges.length;
  const nodes = edges.map((edge) => edge.node);
  fillTable("lines", LINES, nodes, {
    row: (l) => ({ testid: "line-row", dataset: { id: l.id, kind: l.kind } }),
  });
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

export async function turnLinesPage(step) {
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

/** Fetch the statement's workflow fields again (another user may have moved it). */
export async function refreshStatement() {
  const s = state.statement;
  const fresh = (await gql(STATEMENT, { id: s.id, first: 1, after: null })).statement;
  if (!fresh || state.statement !== s) return;
  const { lines: _ignored, ...fields } = fresh;
  Object.assign(s, fields);
  renderStatement();
}
