// Signing in with an API key of one role and out, for a page whose sign-in form and "who"
// bar are the common ones (data-testid signin, signin-form, signin-key, signin-submit,
// signin-message, signin-error, who, who-key, sign-out): the key is checked with the hub
// (`viewer`) and kept in this tab only (sessionStorage). The finance console and merchant
// insights each say what they accept and what opening and closing them means.

import { $, busy, h, say } from "/assets/dom.js";
import { HubError } from "/assets/graphql.js";

/** What an article a role takes: "an ADMIN key", "a FINANCE key". */
export function aRole(role) {
  return `${/^[AEIOU]/.test(role) ? "an" : "a"} ${role}`;
}

/**
 * Fill the page's sign-in card (`<section data-testid="signin">`, empty in its HTML) with
 * the form for a key of `role`; `lead` says whose key that is.
 */
function fillCard(role, lead) {
  const card = $("signin");
  card.replaceChildren(
    h("h1", { id: "signin-title" }, "Sign in"),
    h(
      "p",
      { class: "muted" },
      `${lead} It stays in this browser tab only and is forgotten when you sign out or ` +
        "close the tab.",
    ),
    h("p", { class: "notice", testid: "signin-message", role: "status", hidden: true }),
    h(
      "form",
      { testid: "signin-form", autocomplete: "off" },
      h(
        "label",
        {},
        h("span", {}, `${role} key`),
        h("input", {
          name: "key",
          type: "password",
          testid: "signin-key",
          autocomplete: "off",
          spellcheck: "false",
          required: true,
        }),
      ),
      h("button", { type: "submit", class: "primary", testid: "signin-submit" }, "Sign in"),
    ),
    h("p", { class: "error", testid: "signin-error", role: "alert", hidden: true }),
  );
}

/**
 * The sign-in of one page.
 * - `role`, `lead`: the role of the key it asks for, and whose key that is (the form's text);
 * - `storage`: the sessionStorage name of its key;
 * - `state`: the page's state, whose `key` the page's requests send;
 * - `gql(query)`: the page's request, resolving to `data`;
 * - `viewer`: the query that says who the key is (`viewer { role ... }`);
 * - `refusal(viewer)`: why this key may not open the page, or "" when it may;
 * - `open(viewer, key)`: show the page for this viewer (after the form is hidden);
 * - `close()`: forget what the page loaded and hide it (before the form shows);
 * - `signedOut`: what the form says after signing out.
 */
export function keySignIn({
  role,
  lead,
  storage,
  state,
  gql,
  viewer,
  refusal,
  open,
  close,
  signedOut,
}) {
  fillCard(role, lead);

  function show(message = "") {
    state.key = null;
    sessionStorage.removeItem(storage);
    close();
    $("who").hidden = true;
    $("signin").hidden = false;
    say($("signin-message"), "");
    say($("signin-error"), message);
    $("signin-form").reset();
    $("signin-key").focus();
  }

  async function signIn(key) {
    state.key = key;
    let data;
    try {
      data = await gql(viewer);
    } catch (error) {
      state.key = null;
      throw error;
    }
    const refused = refusal(data.viewer);
    if (refused) {
      state.key = null;
      throw new HubError(refused, "WRONG_ROLE");
    }
    sessionStorage.setItem(storage, key);
    $("signin").hidden = true;
    $("who").hidden = false;
    $("who-key").textContent = `key …${key.slice(-4)}`;
    await open(data.viewer, key);
  }

  async function onSubmit(event) {
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

  function signOut() {
    show();
    say($("signin-message"), signedOut);
  }

  /** Open the page with the key this tab kept, or show the form. */
  async function resume() {
    const key = sessionStorage.getItem(storage);
    if (!key) {
      show();
      return;
    }
    try {
      await signIn(key);
    } catch (error) {
      show(error.message);
    }
  }

  return { show, onSubmit, signOut, resume };
}
