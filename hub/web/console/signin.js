// Signing in with a FINANCE key (checked with the hub, kept in this tab only) and out.

import { $, busy, say } from "/assets/dom.js";
import { gql, HubError } from "./api.js";
import { reloadBatches } from "./batches.js";
import { route } from "./router.js";
import { resetRunForm } from "./run.js";
import { state } from "./state.js";

const KEY_STORAGE = "console.financeKey";

const MESSAGES = {
  wrongRole: (role) =>
    `This is ${/^[AEIOU]/.test(role) ? "an" : "a"} ${role} key; the finance console needs a ` +
    "FINANCE key. Ask an administrator for one.",
  signedOut: "You signed out. Sign in again with a FINANCE key to continue.",
};

const VIEWER = "query Viewer { viewer { role } }";

/** Back to the sign-in form; the key and all that was loaded with it are forgotten. */
export function showSignIn(message = "") {
  state.key = null;
  sessionStorage.removeItem(KEY_STORAGE);
  const generation = state.batches.generation + 1; // an answer still on its way is dropped
  state.batches = { nodes: [], endCursor: null, hasNextPage: false, generation };
  state.statement = null;
  state.view += 1;
  $("console").hidden = true;
  $("who").hidden = true;
  $("signin").hidden = false;
  say($("signin-message"), "");
  say($("signin-error"), message);
  $("signin-form").reset();
  $("signin-key").focus();
}

/** Check the key with the hub (viewer.role); resolves when the console is open. */
async function signIn(key) {
  state.key = key;
  let data;
  try {
    data = await gql(VIEWER);
  } catch (error) {
    state.key = null;
    throw error;
  }
  const role = data.viewer.role;
  if (role !== "FINANCE") {
    state.key = null;
    throw new HubError(MESSAGES.wrongRole(role), "WRONG_ROLE");
  }
  sessionStorage.setItem(KEY_STORAGE, key);
  $("signin").hidden = true;
  $("who").hidden = false;
  $("who-key").textContent = `key …${key.slice(-4)}`;
  $("console").hidden = false;
  resetRunForm();
  await reloadBatches();
  await route();
}

export async function onSignIn(event) {
  event.preventDefault();
  const key = event.currentTarget.key.value.trim();
  say($("signin-message"), "");
  await busy($("signin-submit"), async () => {
    try {
      await signIn(key);
    } catch (error) {
      if (!(error instanceof HubError)) console.error(error);
      say($("signin-error"), error.message, error.code);
    }
  });
}

export function signOut() {
  showSignIn();
  say($("signin-message"), MESSAGES.signedOut);
  history.replaceState(null, "", location.pathname + location.search);
}

/** Open the console with the key this tab kept, or show the sign-in form. */
export async function resume() {
  const key = sessionStorage.getItem(KEY_STORAGE);
  if (!key) {
    showSignIn();
    return;
  }
  try {
    await signIn(key);
  } catch (error) {
    showSignIn(error.message);
  }
}
