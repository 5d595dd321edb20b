// The hub's GraphQL API as the finance console calls it: every request carries the FINANCE
// key, and every failure becomes a sentence that says what to do next.

import { say } from "/assets/dom.js";
import { graphqlEndpoint, HubError, postGraphQL } from "/assets/graphql.js";
import { state } from "./state.js";

export { HubError };

export const ENDPOINT = graphqlEndpoint();

export const MESSAGES = {
  badKey: "This key is not valid; ask an administrator for a FINANCE key.",
  forbidden: (message) =>
    `${message} The console needs a FINANCE key; sign out and sign in with one.`,
  network: "The hub did not answer. Check your connection, then try again.",
};

/** The key was refused (HTTP 401): back to sign-in. */
export class KeyRefused extends HubError {}

let keyRefused = () => {};

/** What to do when the hub refuses the key (console.js: back to sign-in, saying why). */
export function onKeyRefused(handler) {
  keyRefused = handler;
}

export function authHeaders() {
  return state.key ? { Authorization: `Bearer ${state.key}` } : {};
}

/** POST a document with the key; resolves to `data`, throws HubError in the console's words. */
export async function gql(query, variables = {}) {
  try {
    return await postGraphQL(ENDPOINT, { query, variables, headers: authHeaders() });
  } catch (error) {
    throw inConsoleWords(error);
  }
}

function inConsoleWords(error) {
  if (error.status === 401) return new KeyRefused(MESSAGES.badKey, "UNAUTHENTICATED");
  if (error.code === "FORBIDDEN") {
    return new HubError(MESSAGES.forbidden(error.message), error.code);
  }
  if (error.code !== "NETWORK") return error;
  if (error.status === null) return new HubError(MESSAGES.network, "NETWORK");
  return new HubError(
    `The hub answered HTTP ${error.status}. Try again in a minute; if it persists, ` +
      "tell the hub's operators.",
    "HTTP",
  );
}

/** Run `action`; a refused key signs out, any other failure is shown in `errorEl`. */
export async function guarded(action, errorEl) {
  if (errorEl) say(errorEl, "");
  try {
    return await action();
  } catch (error) {
    if (error instanceof KeyRefused) {
      keyRefused(error.message);
      return undefined;
    }
    if (!(error instanceof HubError)) console.error(error);
    if (errorEl) say(errorEl, error.message || String(error), error.code);
    return undefined;
  }
}
