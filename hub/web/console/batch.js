// One batch: its figures, net positions, payment instructions, statements and the partner
// reconciliation that ran before it.

import { $, h, say } from "/assets/dom.js";
import { fromCents, sum } from "/assets/money.js";
import { gql } from "./api.js";
import { state } from "./state.js";
import {
  badge,
  byName,
  figure,
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

  const positions = byName(batch.positions);
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

  const statements = byName(batch.statements);
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
