// Answering a dispute: accept with adjustment lines (settled in the next batch) or reject.

import { $, busy, h, say } from "/assets/dom.js";
import { gql, guarded } from "./api.js";
import { refreshTrend } from "./batches.js";
import { state } from "./state.js";
import { renderStatement, STATEMENT_PAYLOAD } from "./statements.js";

const RESOLVE = `mutation Resolve($input: ResolveDisputeInput!) {
  resolveDispute(input: $input) { ${STATEMENT_PAYLOAD} }
}`;

/** One adjustment line of the resolve form: a counterparty of this statement, an amount. */
export function addAdjustmentLine() {
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

export async function onResolve(event) {
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
