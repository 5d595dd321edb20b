// Signing in with a FINANCE key and out (/assets/signin.js: checked with the hub, kept in
// this tab only); what opening and closing the console means.

import { $ } from "/assets/dom.js";
import { aRole, keySignIn } from "/assets/signin.js";
import { gql } from "./api.js";
import { reloadBatches } from "./batches.js";
import { route } from "./router.js";
import { resetRunForm } from "./run.js";
import { state } from "./state.js";

const signIn = keySignIn({
  role: "FINANCE",
  lead: "Use your FINANCE API key.",
  storage: "console.financeKey",
  state,
  gql,
  viewer: "query Viewer { viewer { role } }",
  refusal: ({ role }) =>
    role === "FINANCE"
      ? ""
      : `This is ${aRole(role)} key; the finance console needs a FINANCE key. ` +
        "Ask an administrator for one.",
  async open() {
    $("console").hidden = false;
    resetRunForm();
    await reloadBatches();
    await route();
  },
  close() {
    const generation = state.batches.generation + 1; // an answer still on its way is dropped
    state.batches = { nodes: [], endCursor: null, hasNextPage: false, generation };
    state.statement = null;
    state.view += 1;
    $("console").hidden = true;
  },
  signedOut: "You signed out. Sign in again with a FINANCE key to continue.",
});

/** Back to the sign-in form, saying why; the key and all loaded with it are forgotten. */
export const showSignIn = signIn.show;
export const onSignIn = signIn.onSubmit;
/** Open the console with the key this tab kept, or show the sign-in form. */
export const resume = signIn.resume;

export function signOut() {
  signIn.signOut();
  history.replaceState(null, "", location.pathname + location.search);
}
