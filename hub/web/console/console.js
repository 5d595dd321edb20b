// The finance console: finance staff sign in with a FINANCE key, run the nightly
// settlement for a business date, read batches (net positions, payment instructions,
// statements), and take statements through DRAFT -> APPROVED or DISPUTED -> PAID.
// Plain browser JS against the hub's public GraphQL API; no build step. This module wires
// the parts: signin.js, run.js (run settlement), batches.js (the list, the trend card),
// router.js (the address picks the view), batch.js, statements.js, workflow.js, actions.js,
// disputes.js, csv.js; api.js (GraphQL with the key), state.js, ui.js; and /assets/ (the
// helpers the hub's pages share).

import { $, busy, say } from "/assets/dom.js";
import { onAction } from "./actions.js";
import { guarded, onKeyRefused } from "./api.js";
import { loadBatches, reloadBatches } from "./batches.js";
import { downloadCsv } from "./csv.js";
import { addAdjustmentLine, onResolve } from "./disputes.js";
import { route } from "./router.js";
import { hideRunConfirm, onRunConfirm, onRunSubmit } from "./run.js";
import { onSignIn, resume, showSignIn, signOut } from "./signin.js";
import { TZ } from "./state.js";
import { turnLinesPage } from "./statements.js";

function wire() {
  onKeyRefused(showSignIn);
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
  await resume();
}

start().finally(() => {
  document.body.dataset.ready = "true";
});
