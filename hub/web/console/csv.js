// A statement's CSV, fetched with the key (a plain link could not send it) and saved.

import { $, h, say } from "/assets/dom.js";
import { authHeaders, ENDPOINT, HubError, KeyRefused, MESSAGES } from "./api.js";
import { state } from "./state.js";

export async function downloadCsv() {
  const s = state.statement;
  if (!s) return;
  const url = new URL(s.csvUrl, ENDPOINT);
  let response;
  try {
    response = await fetch(url, { headers: authHeaders() });
  } catch {
    throw new HubError(MESSAGES.network, "NETWORK");
  }
  if (response.status === 401) throw new KeyRefused(MESSAGES.badKey, "UNAUTHENTICATED");
  if (!response.ok) {
    let detail = `HTTP ${response.status}`;
    try {
      detail = (await response.json()).error || detail;
    } catch {
      // keep the status
    }
    throw new HubError(`The CSV could not be downloaded (${detail}). Try again.`, "CSV");
  }
  const blob = await response.blob();
  const disposition = response.headers.get("Content-Disposition") || "";
  const named = /filename="?([^";]+)"?/.exec(disposition);
  const filename = named ? named[1] : `statement-${s.merchant.id}-${s.businessDate}.csv`;
  const href = URL.createObjectURL(blob);
  const link = h("a", { href, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  // The browser has read the blob once the click is handled; free it a little later.
  setTimeout(() => URL.revokeObjectURL(href), 30_000);
  say($("csv-result"), `Downloaded ${filename}.`, "CSV");
}
