// Approve, dispute, mark paid: one mutation each, refused by the hub when the status does
// not allow it (then the statement's current status is fetched and shown).

import { $, busy, say } from "/assets/dom.js";
import { gql, guarded } from "./api.js";
import { refreshTrend } from "./batches.js";
import { state } from "./state.js";
import { refreshStatement, renderStatement, STATEMENT_PAYLOAD } from "./statements.js";
import { renderActions } from "./workflow.js";

const APPROVE = `mutation Approve($id: ID!, $note: String) {
  approveStatement(id: $id, note: $note) { ${STATEMENT_PAYLOAD} }
}`;

const DISPUTE = `mutation Dispute($id: ID!, $reason: String!) {
  disputeStatement(id: $id, reason: $reason) { ${STATEMENT_PAYLOAD} }
}`;

const PAY = `mutation Pay($id: ID!, $reference: String!) {
  markStatementPaid(id: $id, paymentReference: $reference) { ${STATEMENT_PAYLOAD} }
}`;

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

export async function onAction(event, name) {
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
