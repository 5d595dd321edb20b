// Small DOM helpers shared by the page's parts, and the one place failures are shown.

import { HubError, SessionEnded } from "./api.js";
import { formatNumber, t } from "./i18n.js";

let sessionEnded = async () => {};

/** What to do when the member session has lapsed (app.js: back to sign-in). */
export function onSessionEnded(handler) {
  sessionEnded = handler;
}

/** The member session has lapsed: hand over to the handler. */
export function endSession() {
  return sessionEnded();
}

/** The element with this data-testid. */
export function $(testid, root = document) {
  return root.querySelector(`[data-testid="${testid}"]`);
}

/** An element; props: class, testid, dataset, on<event>, hidden/disabled, other attributes. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "testid") el.dataset.testid = value;
    else if (name === "dataset") {
      for (const [k, v] of Object.entries(value)) el.dataset[k] = String(v);
    } else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** An <option>. */
export function option(value, label, selected = false) {
  const el = h("option", { value }, label);
  el.selected = selected;
  return el;
}

/** Show `text` in a message element (hidden when empty); `code` goes to data-code. */
export function say(el, text, code = "") {
  el.textContent = text || "";
  el.dataset.code = code || "";
  el.hidden = !text;
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
