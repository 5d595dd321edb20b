// Small DOM helpers shared by the page's parts, and the one place failures are shown.

import { $, h, say } from "/assets/dom.js";
import { HubError, SessionEnded } from "./api.js";
import { formatNumber, t } from "./i18n.js";

// Shared with the hub's other pages; the mall's parts take them from here.
export { $, h, say };

let sessionEnded = async () => {};

/** What to do when the member session has lapsed (app.js: back to sign-in). */
export function onSessionEnded(handler) {
  sessionEnded = handler;
}

/** The member session has lapsed: hand over to the handler. */
export function endSession() {
  return sessionEnded();
}

/** An <option>. */
export function option(value, label, selected = false) {
  const el = h("option", { value }, label);
  el.selected = selected;
  return el;
}

/** A payload's userErrors, in the hub's words, with the first code in data-code. */
export function sayUserErrors(el, errors) {
  say(el, errors.map((e) => e.message).join(" "), errors[0]?.code);
}

/** An amount of points, e.g. "1,200 HUB". */
export function points(n, program) {
  return `${formatNumber(n)} ${program}`;
}

/** What to tell the member about a failed call. */
export function describe(error) {
  return error.code === "NETWORK" ? t("networkError", { message: error.message }) : error.message;
}

/** Run an action; a lapsed session goes back to sign-in, other failures show in errorEl. */
export async function guarded(action, errorEl) {
  try {
    await action();
  } catch (error) {
    if (error instanceof SessionEnded) {
      await endSession();
      return;
    }
    if (!(error instanceof HubError)) console.error(error);
    if (errorEl) say(errorEl, describe(error), error.code);
  }
}

/** Today in the browser's time zone, as YYYY-MM-DD. */
export function today() {
  const d = new Date();
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}
