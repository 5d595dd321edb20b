// Running the nightly settlement for a business date: checked, confirmed, then run.

import { $, busy, say } from "/assets/dom.js";
import { formatMoney } from "/assets/money.js";
import { gql, guarded } from "./api.js";
import { reloadBatches } from "./batches.js";
import { navigate } from "./router.js";
import { state, TZ } from "./state.js";
import { plural, todayInTz } from "./ui.js";

const BATCH_EXISTS = `query BatchExists($date: Date!) {
  settlementBatch(businessDate: $date) { id obligationCount }
}`;

const RUN = `mutation RunSettlement($date: Date!) {
  runSettlement(businessDate: $date) {
    batch { id businessDate currency obligationCount grossAmount statements { id } }
    userErrors { field message code }
  }
}`;

export function resetRunForm() {
  const today = todayInTz();
  const input = $("run-date");
  input.value = today;
  input.max = today;
  $("run-tz").textContent = TZ;
  hideRunConfirm();
  say($("run-error"), "");
  say($("run-result"), "");
}

export function hideRunConfirm() {
  state.pendingRun = null;
  $("run-confirm").hidden = true;
  $("run-form").hidden = false;
}

export async function onRunSubmit(event) {
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

export async function onRunConfirm() {
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
