// The address decides the view: #/batches/<date>, #/statements/<id>, or the newest batch.

import { $, say } from "/assets/dom.js";
import { guarded } from "./api.js";
import { showBatch } from "./batch.js";
import { renderBatchList } from "./batches.js";
import { currentRoute, state } from "./state.js";
import { showStatement } from "./statements.js";
import { showOnly } from "./ui.js";

/** Go to `hash`; when already there, `reload` shows it afresh. */
export function navigate(hash, reload = false) {
  if (location.hash === hash) {
    if (reload) route();
  } else {
    location.hash = hash;
  }
}

/** Show the view the address names; `moved`: the user navigated, so bring it into sight. */
export async function route(moved = false) {
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
