// The statement's workflow panel: which actions its status allows, what to do next, and the
// adjustments a resolved dispute carried into a batch.

import { $, h } from "/assets/dom.js";
import { fillTable } from "/assets/report.js";
import { state } from "./state.js";
import { merchantCell, moneyCell } from "./ui.js";

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

export function renderActions() {
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

const ADJUSTMENTS = [
  { heading: "Counterparty", cell: (a) => merchantCell(a.counterparty) },
  { heading: "Reason", cell: (a) => h("td", {}, a.reason) },
  {
    heading: "Settled in",
    cell: (a) =>
      h(
        "td",
        { testid: "adjustment-carried" },
        a.carriedTo
          ? h("a", { href: `#/batches/${a.carriedTo.businessDate}` }, a.carriedTo.businessDate)
          : "the next batch",
      ),
  },
  {
    heading: "Amount",
    num: true,
    cell: (a) => moneyCell(a.amount, "adjustment-amount", " strong"),
  },
];

export function renderAdjustments() {
  const s = state.statement;
  $("resolve-form").hidden = s.status !== "DISPUTED";
  const card = $("adjustments-card");
  card.hidden = !s.resolution && s.adjustments.length === 0;
  $("statement-resolution").textContent = s.resolution ? `Resolution: ${s.resolution}` : "";
  fillTable("adjustments", ADJUSTMENTS, s.adjustments, {
    row: () => ({ testid: "adjustment-row" }),
  });
}
