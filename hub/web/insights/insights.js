// Merchant insights: a merchant signs in with its MERCHANT key and sees, for a period of
// business dates, the points its program issued, redeemed and expired, its active
// members, its members by tier, its most redeemed rewards and its rising members, with
// charts. Plain browser JS against the hub's public GraphQL API; no build step.

import { $, h, say } from "/assets/dom.js";
import { graphqlEndpoint, HubError, postGraphQL } from "/assets/graphql.js";
import { figure, fillTable } from "/assets/report.js";
import { aRole, keySignIn } from "/assets/signin.js";
import { barChart, dailyChart } from "./charts.js";

const ENDPOINT = graphqlEndpoint();
const TZ =
  document.querySelector('meta[name="hub-settlement-tz"]')?.getAttribute("content") ||
  "Asia/Shanghai";
const KEY_STORAGE = "insights.merchantKey";
const DEFAULT_DAYS = 30;

const MESSAGES = {
  badKey: "This key is not valid; ask the hub's administrator for your MERCHANT key.",
  wrongRole: (role) =>
    `This is ${aRole(role)} key; merchant insights need a MERCHANT key, which shows one ` +
    "merchant's own figures.",
  network: "The hub did not answer. Check your connection, then try again.",
  signedOut: "You signed out. Sign in again with your MERCHANT key to continue.",
  badPeriod: "Choose a start date on or before the end date.",
};

const VIEWER = "query Viewer { viewer { role merchant { id name } } }";

const INSIGHTS = `query Insights($merchant: ID!, $from: Date!, $to: Date!) {
  merchantInsights(merchant: $merchant, from: $from, to: $to) {
    from to pointsIssued pointsRedeemed pointsExpired greenPointsIssued activeMembers
    membersByTier { tier { code name } members }
    topRewards { reward { id title } redemptions points }
    risingMembers { id displayName }
    daily { date pointsIssued pointsRedeemed pointsExpired greenPointsIssued }
  }
}`;

const state = { key: null, merchant: null, view: 0 };

// ---------------------------------------------------------------- helpers

/** The key was refused (HTTP 401): back to sign-in. */
class KeyRefused extends HubError {}

/** POST a document with the merchant's key; resolves to `data`, throws HubError. */
async function gql(query, variables = {}) {
  try {
    return await postGraphQL(ENDPOINT, {
      query,
      variables,
      headers: state.key ? { Authorization: `Bearer ${state.key}` } : {},
    });
  } catch (error) {
    if (!(error instanceof HubError)) throw error;
    if (error.status === 401) throw new KeyRefused(MESSAGES.badKey, "UNAUTHENTICATED", 401);
    if (error.code === "NETWORK") {
      const message = error.status
        ? `The hub answered HTTP ${error.status}. Try again in a minute.`
        : MESSAGES.network;
      throw new HubError(message, "NETWORK", error.status);
    }
    throw error;
  }
}

const numberFormat = new Intl.NumberFormat("en-US");
const dateFormat = new Intl.DateTimeFormat("sv-SE", {
  timeZone: TZ,
  year: "numeric",
  month: "2-digit",
  day: "2-digit",
});

/** A business date in the settlement time zone, `days` before today, as YYYY-MM-DD. */
function businessDate(daysBefore = 0) {
  return dateFormat.format(new Date(Date.now() - daysBefore * 86_400_000));
}

// ---------------------------------------------------------------- sign-in

const signIn = keySignIn({
  role: "MERCHANT",
  lead: "Use your merchant's API key (role MERCHANT).",
  storage: KEY_STORAGE,
  state,
  gql,
  viewer: VIEWER,
  refusal: ({ role, merchant }) =>
    role === "MERCHANT" && merchant ? "" : MESSAGES.wrongRole(role),
  async open({ merchant }) {
    state.merchant = merchant;
    $("who-merchant").textContent = merchant.name;
    $("merchant-name").textContent = merchant.name;
    $("dashboard").hidden = false;
    setPeriod(DEFAULT_DAYS);
    await show();
  },
  close() {
    state.merchant = null;
    state.view += 1;
    $("dashboard").hidden = true;
  },
  signedOut: MESSAGES.signedOut,
});
const showSignIn = signIn.show;

// ---------------------------------------------------------------- the figures

function setPeriod(days) {
  $("period-from").value = businessDate(days - 1);
  $("period-to").value = businessDate(0);
}

async function show() {
  const from = $("period-from").value;
  const to = $("period-to").value;
  say($("view-error"), "");
  if (!from || !to || from > to) {
    say($("view-error"), MESSAGES.badPeriod, "INVALID_INPUT");
    return;
  }
  const view = ++state.view;
  const dashboard = $("dashboard");
  dashboard.setAttribute("aria-busy", "true");
  delete dashboard.dataset.loaded;
  try {
    const data = await gql(INSIGHTS, { merchant: state.merchant.id, from, to });
    if (view !== state.view) return; // a newer period was asked for meanwhile
    render(data.merchantInsights);
    dashboard.dataset.loaded = `${from}..${to}`;
  } catch (error) {
    if (error instanceof KeyRefused) {
      showSignIn(error.message);
      return;
    }
    if (!(error instanceof HubError)) console.error(error);
    say($("view-error"), error.message, error.code);
  } finally {
    dashboard.removeAttribute("aria-busy");
  }
}

// The period's figures: each a field of merchantInsights.
const FIGURES = [
  { label: "Points issued", field: "pointsIssued", testid: "points-issued" },
  { label: "Points redeemed", field: "pointsRedeemed", testid: "points-redeemed" },
  { label: "Points expired", field: "pointsExpired", testid: "points-expired" },
  {
    label: "Green points issued",
    field: "greenPointsIssued",
    testid: "green-points-issued",
    tone: "green",
  },
  { label: "Active members", field: "activeMembers", testid: "active-members" },
];

/** The figure tiles: the period's (`found`), or a dash each before there is one. */
function renderFigures(found = null) {
  $("figures").replaceChildren(
    ...FIGURES.map(({ label, field, testid, tone }) =>
      found
        ? figure(label, numberFormat.format(found[field]), testid, tone, { value: found[field] })
        : figure(label, "–", testid, tone),
    ),
  );
}

const tierName = (t) => (t.tier ? t.tier.name : "Below the first tier");

const TIERS = [
  { heading: "Tier", cell: (t) => h("td", {}, tierName(t)) },
  {
    heading: "Members",
    num: true,
    cell: (t) => h("td", { testid: "tier-members" }, numberFormat.format(t.members)),
  },
];

const REWARDS = [
  { heading: "Reward", cell: (r) => h("td", {}, r.reward.title) },
  {
    heading: "Redemptions",
    num: true,
    cell: (r) => h("td", { testid: "reward-redemptions" }, numberFormat.format(r.redemptions)),
  },
  { heading: "Points", num: true, cell: (r) => h("td", {}, numberFormat.format(r.points)) },
];

function render(found) {
  $("period-label").textContent = `${found.from} to ${found.to}`;
  renderFigures(found);

  dailyChart($("chart-daily"), found.daily);

  barChart(
    $("chart-tiers"),
    "Members",
    found.membersByTier.map(tierName),
    found.membersByTier.map((t) => t.members),
  );
  fillTable("tiers", TIERS, found.membersByTier, {
    row: (t) => ({ testid: "tier-row", dataset: { tier: t.tier ? t.tier.code : "" } }),
  });

  const rewards = found.topRewards;
  barChart(
    $("chart-rewards"),
    "Redemptions",
    rewards.map((r) => r.reward.title),
    rewards.map((r) => r.redemptions),
  );
  fillTable("rewards", REWARDS, rewards, {
    row: (r) => ({ testid: "reward-row", dataset: { reward: r.reward.id } }),
    empty: "rewards-empty",
  });

  $("rising-to").textContent = found.to;
  $("rising").replaceChildren(
    ...found.risingMembers.map((m) =>
      h("li", { testid: "rising-member", dataset: { member: m.id } }, m.displayName),
    ),
  );
  $("rising-empty").hidden = found.risingMembers.length !== 0;
}

// ---------------------------------------------------------------- start

function wire() {
  $("signin-form").addEventListener("submit", signIn.onSubmit);
  $("sign-out").addEventListener("click", signIn.signOut);
  $("period-form").addEventListener("submit", (event) => {
    event.preventDefault();
    show();
  });
  for (const button of document.querySelectorAll('[data-testid="preset"]')) {
    button.addEventListener("click", () => {
      setPeriod(Number(button.dataset.days));
      show();
    });
  }
  $("tz").textContent = TZ;
  renderFigures();
}

async function start() {
  wire();
  await signIn.resume();
}

start().finally(() => {
  document.body.dataset.ready = "true";
});
