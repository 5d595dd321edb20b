// The reference universal mall: what a storefront team builds on the hub's public
// GraphQL API with a STOREFRONT key and a member session token. Plain browser JS, no
// build step; every GraphQL document it sends is a file in operations/ (see api.js).
// This module signs the member in and wires the parts: wallet.js (balances, quote,
// convert), catalog.js (rewards, redeem), redemptions.js (list, cancel).

import { gql, HubError, setCredentials } from "./api.js";
import { initCatalog, renderCatalog, renderFilters, resetCatalog } from "./catalog.js";
import { initialLanguage, language, setLanguage, t } from "./i18n.js";
import { initRedemptions, loadRedemptions, renderRedemptions } from "./redemptions.js";
import { emptyFilters, state } from "./state.js";
import { $, guarded, h, onSessionEnded, say } from "./ui.js";
import {
  clearQuote,
  initWallet,
  renderBalances,
  renderConvertForm,
  renderQuote,
  stopQuote,
} from "./wallet.js";

const SESSION_KEY = "mall.session";

// ---------------------------------------------------------------- sign-in

async function demoMembers() {
  // The demo's stand-in for a storefront backend; a real storefront has its own.
  try {
    const response = await fetch(new URL("demo/members", import.meta.url));
    if (!response.ok) return [];
    const people = await response.json();
    return Array.isArray(people) ? people : [];
  } catch {
    return [];
  }
}

async function showSignIn(message = "") {
  setCredentials(null);
  sessionStorage.removeItem(SESSION_KEY);
  stopQuote();
  state.member = null;
  state.filters = emptyFilters();
  // Answers still on their way for the member who left are dropped, and nothing of theirs stays.
  state.catalog.generation += 1;
  state.redemptions = { generation: state.redemptions.generation + 1, nodes: [] };
  $("reward-grid").replaceChildren();
  $("redemption-list").replaceChildren();
  $("mall").hidden = true;
  $("who").hidden = true;
  $("signin").hidden = false;
  say($("signin-message"), message);
  say($("signin-error"), "");
  if (state.demoMembers === null) state.demoMembers = await demoMembers();
  const demo = state.demoMembers.length > 0;
  $("demo-signin").hidden = !demo;
  $("manual-signin").open = !demo;
  // Without the demo the form is the only way in: no "instead".
  const toggle = $("manual-toggle");
  toggle.dataset.i18n = demo ? "manualToggle" : "manualTitle";
  toggle.textContent = t(toggle.dataset.i18n);
  $("member-picker").replaceChildren(
    ...state.demoMembers.map((person) =>
      h(
        "li",
        {},
        h(
          "button",
          {
            type: "button",
            class: "member",
            testid: "demo-member",
            dataset: { memberId: person.id },
            onclick: (event) => demoSignIn(person.id, event.currentTarget),
          },
          h("span", { class: "avatar", "aria-hidden": "true" }, person.name.slice(0, 1)),
          person.name,
        ),
      ),
    ),
  );
}

async function demoSignIn(memberId, button) {
  button.disabled = true;
  try {
    const response = await fetch(new URL("demo/session", import.meta.url), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ memberId }),
    });
    if (!response.ok) throw new HubError(`HTTP ${response.status}`);
    const session = await response.json();
    await signIn({ key: session.storefrontKey, token: session.token });
  } catch (error) {
    if (!(error instanceof HubError)) console.error(error);
    say($("signin-error"), t("signInFailed", { message: error.message }), error.code);
  } finally {
    button.disabled = false;
  }
}

async function manualSignIn(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const button = $("signin-submit");
  button.disabled = true;
  try {
    await signIn({ key: form.key.value.trim(), token: form.token.value.trim() });
  } catch (error) {
    say($("signin-error"), t("signInFailed", { message: error.message }), error.code);
  } finally {
    button.disabled = false;
  }
}

/** Check the credentials with the hub (viewer.member), then open the mall. */
async function signIn(credentials) {
  setCredentials(credentials);
  let data;
  try {
    data = await gql("Viewer");
  } catch (error) {
    setCredentials(null);
    throw error;
  }
  if (!data.viewer.member) {
    setCredentials(null);
    throw new HubError(t("notAMember"), "NO_MEMBER");
  }
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(credentials));
  state.member = data.viewer.member;
  state.directory ??= await gql("MallDirectory");
  const codes = state.member.accounts.map((a) => a.program.code);
  state.filters.priceIn = codes.includes("HUB") ? "HUB" : (codes[0] ?? "HUB");
  $("signin").hidden = true;
  $("who").hidden = false;
  $("member-name").textContent = state.member.displayName;
  $("mall").hidden = false;
  clearQuote();
  say($("convert-result"), "");
  renderBalances();
  renderConvertForm();
  renderFilters();
  resetCatalog();
  await guarded(() => loadRedemptions(true), $("redemptions-error"));
}

// ---------------------------------------------------------------- language and start

function switchLanguage(lang) {
  setLanguage(lang);
  for (const button of document.querySelectorAll("[data-lang]")) {
    button.setAttribute("aria-pressed", String(button.dataset.lang === language()));
  }
  if (!state.member) return;
  renderBalances();
  renderConvertForm();
  renderQuote();
  renderFilters();
  renderCatalog();
  renderRedemptions();
}

async function start() {
  switchLanguage(initialLanguage());
  for (const button of document.querySelectorAll("[data-lang]")) {
    button.addEventListener("click", () => switchLanguage(button.dataset.lang));
  }
  onSessionEnded(() => showSignIn(t("sessionExpired")));
  $("sign-out").addEventListener("click", () => showSignIn());
  $("signin-form").addEventListener("submit", manualSignIn);
  initWallet();
  initCatalog();
  initRedemptions();

  const saved = sessionStorage.getItem(SESSION_KEY);
  if (saved) {
    try {
      await signIn(JSON.parse(saved));
    } catch {
      await showSignIn(t("sessionExpired"));
    }
    return;
  }
  await showSignIn();
}

start();
