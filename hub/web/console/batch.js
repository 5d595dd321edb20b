// One batch: its figures, net positions, payment instructions, statements and the partner
// reconciliation that ran before it.

import { $, h, say } from "/assets/dom.js";
import { fromCents, sum } from "/assets/money.js";
import { figure, fillRows, fillTable } from "/assets/report.js";
import { gql } from "./api.js";
import { state } from "./state.js";
import {
  badge,
  byName,
  formatDateTime,
  merchantCell,
  moneyCell,
  moneyFigure,
  numberFormat,
  plural,
  showOnly,
  todayInTz,
} from "./ui.js";

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

export async function showBatch(date, view) {
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

// Each merchant's row (its status, then a summary across) is followed by its breaks' rows.
const RECONCILIATION = [
  { heading: "Merchant / movement" },
  { heading: "Status / member" },
  { heading: "Hub points", num: true },
  { heading: "Partner points", num: true },
  { heading: "Break" },
];

// The nightly run reconciles each connected partner before settling; its breaks, per merchant.
function renderReconciliations(reports) {
  const points = (value) => (value === null ? "—" : numberFormat.format(value));
  const rows = [];
  for (const r of byName(reports)) {
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
  fillRows("reconciliations", RECONCILIATION, rows, "reconciliations-empty");
}

const POSITIONS = [
  { heading: "Merchant", cell: (p) => merchantCell(p.merchant) },
  { heading: "Receivable", num: true, cell: (p) => moneyCell(p.receivable, "position-receivable") },
  { heading: "Payable", num: true, cell: (p) => moneyCell(p.payable, "position-payable") },
  { heading: "Fees", num: true, cell: (p) => moneyCell(p.fees, "position-fees") },
  { heading: "Net", num: true, cell: (p) => moneyCell(p.net, "position-net", " strong") },
];

const PAYMENTS = [
  { heading: "Pays", cell: (p) => merchantCell(p.from) },
  {
    th: { "aria-label": "to" },
    cell: () => h("td", { class: "arrow", "aria-hidden": "true" }, "→"),
  },
  { heading: "Receives", cell: (p) => merchantCell(p.to) },
  { heading: "Amount", num: true, cell: (p) => moneyCell(p.amount, "payment-amount", " strong") },
];

const statementHref = (s) => `#/statements/${encodeURIComponent(s.id)}`;

const STATEMENTS = [
  { heading: "Merchant", cell: (s) => merchantCell(s.merchant, statementHref(s)) },
  { heading: "Status", cell: (s) => h("td", {}, badge(s.status, "statement-row-status")) },
  { heading: "Receivable", num: true, cell: (s) => moneyCell(s.receivable) },
  { heading: "Payable", num: true, cell: (s) => moneyCell(s.payable) },
  { heading: "Fees", num: true, cell: (s) => moneyCell(s.fees) },
  { heading: "Net", num: true, cell: (s) => moneyCell(s.net, null, " strong") },
  {
    heading: "Open",
    unseen: true,
    cell: (s) =>
      h(
        "td",
        { class: "open" },
        h("a", { href: statementHref(s), class: "button-link", testid: "open-statement" }, "Open"),
      ),
  },
];

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

  const positions = byName(batch.positions);
  const table = fillTable("positions", POSITIONS, positions, {
    row: (p) => ({ testid: "position-row", dataset: { merchant: p.merchant.id } }),
    empty: "positions-empty",
  });
  const netTotal = sum(positions.map((p) => p.net));
  table.createTFoot().replaceChildren(
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

  fillTable("payments", PAYMENTS, batch.payments, {
    row: (p) => ({ testid: "payment-row", dataset: { from: p.from.id, to: p.to.id } }),
    empty: "payments-empty",
  });

  fillTable("batch-statements", STATEMENTS, byName(batch.statements), {
    row: (s) => ({
      testid: "statement-row",
      dataset: { merchant: s.merchant.id, status: s.status, id: s.id },
    }),
    empty: "statements-empty",
  });
}
