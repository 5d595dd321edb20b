// The merged catalog: filters, pages loaded as the member scrolls (Relay cursors),
// each reward priced in the program the member picked, slots, and redeem. Priced in a
// GREEN program, the catalog is the green zone: the green-tagged rewards it pays for.

import { gql, idempotencyKey, SessionEnded } from "./api.js";
import {
  CATEGORIES,
  formatDateTime,
  formatNumber,
  KINDS,
  language,
  t,
  voucherOff,
} from "./i18n.js";
import { loadRedemptions } from "./redemptions.js";
import { emptyFilters, state } from "./state.js";
import {
  $,
  describe,
  endSession,
  guarded,
  h,
  option,
  points,
  say,
  sayUserErrors,
  today,
} from "./ui.js";
import { isGreen, refreshMember } from "./wallet.js";

const PAGE_SIZE = 8;
// Rewards booked for a time; they need a slot even when none is left to offer.
const SLOTTED_KINDS = new Set([
  "ATTRACTION_TICKET",
  "HOTEL_NIGHT",
  "ROOM_UPGRADE",
  "HOTEL_SERVICE",
  "AWARD_FLIGHT",
]);

const observer = new IntersectionObserver(
  (entries) => {
    if (entries.some((e) => e.isIntersecting)) loadMore();
  },
  { rootMargin: "0px 0px 400px 0px" },
);

/** Fill the filter controls (labels in the current language) from state.filters. */
export function renderFilters() {
  const form = $("filters");
  const f = state.filters;
  const { merchants, programs } = state.directory;
  const mine = new Set(state.member.accounts.map((a) => a.program.code));
  form.priceIn.replaceChildren(
    ...[...programs]
      .sort((a, b) => Number(mine.has(b.code)) - Number(mine.has(a.code)))
      .map((p) => option(p.code, `${p.code} · ${p.name}`, p.code === f.priceIn)),
  );
  const present = new Set(merchants.map((m) => m.category));
  form.category.replaceChildren(
    option("", t("all")),
    ...CATEGORIES.filter((c) => present.has(c)).map((c) =>
      option(c, t(`category.${c}`), c === f.category),
    ),
  );
  form.merchant.replaceChildren(
    option("", t("all")),
    ...[...merchants]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((m) => option(m.id, m.name, m.id === f.merchant)),
  );
  form.kind.replaceChildren(
    option("", t("all")),
    ...KINDS.map((k) => option(k, t(`kind.${k}`), k === f.kind)),
  );
  form.date.min = today();
  form.date.value = f.date;
  form.search.value = f.search;
}

function readFilters() {
  const form = $("filters");
  state.filters = {
    priceIn: form.priceIn.value,
    category: form.category.value,
    merchant: form.merchant.value,
    kind: form.kind.value,
    date: form.date.value,
    search: form.search.value,
  };
  resetCatalog();
}

function catalogFilter() {
  const f = state.filters;
  const filter = {
    category: f.category || null,
    merchant: f.merchant || null,
    kind: f.kind || null,
    availableOn: f.date || null,
    search: f.search.trim() || null,
    // The green zone: exactly the rewards the GREEN program pays for.
    payableWith: isGreen(f.priceIn) ? f.priceIn : null,
  };
  return Object.fromEntries(Object.entries(filter).filter(([, v]) => v !== null));
}

/** Start the list again from the first page (filters changed, or a new member). */
export function resetCatalog() {
  const c = state.catalog;
  c.generation += 1;
  c.nodes = [];
  c.endCursor = null;
  c.hasNextPage = true;
  c.loading = false;
  state.unavailable = [];
  $("reward-grid").replaceChildren();
  renderBanner();
  say($("catalog-error"), "");
  loadMore();
}

/** The next page after endCursor; the IntersectionObserver calls it near the list's end. */
async function loadMore() {
  const c = state.catalog;
  if (c.loading || !c.hasNextPage || !state.member) return;
  c.loading = true;
  const generation = c.generation;
  renderStatus();
  let failed = null;
  try {
    const data = await gql("Rewards", {
      filter: catalogFilter(),
      priceIn: state.filters.priceIn,
      date: state.filters.date || null,
      first: PAGE_SIZE,
      after: c.endCursor,
    });
    if (generation !== c.generation) return; // the filters changed meanwhile
    const page = data.rewards;
    const nodes = page.edges.map((e) => e.node);
    c.nodes.push(...nodes);
    c.endCursor = page.pageInfo.endCursor;
    c.hasNextPage = page.pageInfo.hasNextPage;
    state.unavailable = page.unavailableMerchants;
    $("reward-grid").append(...nodes.map(rewardCard));
    renderBanner();
  } catch (error) {
    if (error instanceof SessionEnded) {
      await endSession();
      return;
    }
    failed = error;
  } finally {
    if (generation === c.generation) c.loading = false;
  }
  if (generation !== c.generation) return;
  if (failed) {
    c.hasNextPage = false;
    const retry = h(
      "button",
      {
        type: "button",
        class: "link",
        testid: "catalog-retry",
        onclick: () => {
          say($("catalog-error"), "");
          c.hasNextPage = true;
          loadMore();
        },
      },
      "↻",
    );
    say($("catalog-error"), describe(failed), failed.code);
    $("catalog-error").append(" ", retry);
  }
  renderStatus();
  // Re-observing reports the sentinel again: if it is still in view, load the next page.
  observer.unobserve($("catalog-sentinel"));
  observer.observe($("catalog-sentinel"));
}

function renderStatus() {
  const c = state.catalog;
  const status = $("catalog-status");
  let text = "";
  if (c.loading) text = t("loading");
  else if (!c.hasNextPage && c.nodes.length === 0 && !$("catalog-error").textContent)
    text = t("noRewards");
  else if (!c.hasNextPage && c.nodes.length > 0) text = t("endOfCatalog");
  status.textContent = text;
  status.dataset.state = c.loading ? "loading" : c.hasNextPage ? "more" : "end";
  status.dataset.count = String(c.nodes.length);
}

function renderBanner() {
  const zone = isGreen(state.filters.priceIn);
  const greenBanner = $("green-zone-banner");
  say(greenBanner, zone ? t("greenZoneBanner", { program: state.filters.priceIn }) : "");
  greenBanner.dataset.program = zone ? state.filters.priceIn : "";
  const names = state.unavailable.map((m) => m.name);
  const banner = $("unavailable-banner");
  say(banner, names.length ? t("unavailable", { names: names.join(", ") }) : "");
  banner.dataset.merchants = state.unavailable.map((m) => m.id).join(",");
}

function slotLabel(slot) {
  const end = new Intl.DateTimeFormat(language() === "zh" ? "zh-CN" : "en-GB", {
    timeStyle: "short",
  }).format(new Date(slot.endsAt));
  const left = slot.remaining === null ? "" : ` · ${t("slotLeft", { left: slot.remaining })}`;
  return `${formatDateTime(slot.startsAt)}–${end}${left}`;
}

function rewardCard(node) {
  const program = state.filters.priceIn;
  const price = node.priceIn;
  const payable = price !== null && price !== undefined;
  const needsSlot = node.slots.length > 0 || SLOTTED_KINDS.has(node.kind);
  // Before priorityUntil only the priority tiers and credit levels may redeem: the hub says
  // when it opens for this member (opensAt), or null when they may now.
  const opensAt = node.opensAt;
  const early = !opensAt && node.priorityUntil && Date.parse(node.priorityUntil) > Date.now();
  const own = node.merchant.program.code;
  // One key per attempt the hub has not answered yet; a retry after a lost answer reuses it.
  let attemptKey = null;

  const error = h("span", { class: "error", testid: "redeem-error", role: "alert", hidden: true });
  const done = h("p", { class: "success", testid: "redeem-success", role: "status", hidden: true });
  const slotSelect = needsSlot
    ? h(
        "select",
        {
          testid: "slot-select",
          onchange: () => {
            attemptKey = null;
            say(error, "");
          },
        },
        option("", node.slots.length ? t("pickSlot") : t("noSlots")),
        node.slots.map((s) => {
          const el = option(s.id, slotLabel(s));
          el.dataset.startsAt = s.startsAt;
          el.disabled = s.remaining === 0;
          return el;
        }),
      )
    : null;
  const label = payable ? t("redeem", { points: formatNumber(price), program }) : t("redeemShort");
  const button = h(
    "button",
    {
      type: "button",
      class: "primary",
      testid: "redeem-button",
      disabled: !node.available || !payable || Boolean(opensAt),
    },
    label,
  );
  button.addEventListener("click", async () => {
    say(error, "");
    say(done, "");
    const slotId = slotSelect?.value || null;
    if (needsSlot && !slotId) {
      say(error, t("pickSlotFirst"), "PICK_SLOT");
      return;
    }
    attemptKey ??= idempotencyKey();
    button.disabled = true;
    button.textContent = t("working");
    await guarded(async () => {
      const data = await gql("RedeemReward", {
        input: {
          memberId: state.member.id,
          rewardId: node.id,
          payWith: program,
          slotId,
          quantity: 1,
          idempotencyKey: attemptKey,
        },
      });
      attemptKey = null;
      const payload = data.redeemReward;
      if (payload.userErrors.length > 0) {
        sayUserErrors(error, payload.userErrors);
        return;
      }
      const r = payload.redemption;
      const params = {
        points: formatNumber(r.points),
        program: r.paidWith.code,
        ref: r.fulfillmentRef,
        code: r.voucher?.code,
      };
      let message = r.fulfillmentRef ? t("redeemed", params) : t("redeemedNoRef", params);
      if (r.voucher) message = t("redeemedVoucher", params);
      say(done, message);
      done.dataset.voucherCode = r.voucher?.code ?? "";
      done.dataset.redemptionId = r.id;
      done.dataset.points = String(r.points);
      await Promise.all([refreshMember(), loadRedemptions(true)]);
    }, error);
    button.disabled = false;
    button.textContent = label;
  });

  const ownPrice =
    own !== program || node.listPrice !== node.price
      ? h(
          "span",
          { class: "own-price muted" },
          t("ownPrice", { points: formatNumber(node.price), program: own }),
          node.listPrice !== node.price ? " " : null,
          node.listPrice !== node.price
            ? h("s", {}, t("listPrice", { points: formatNumber(node.listPrice) }))
            : null,
        )
      : null;
  const terms = node.voucher
    ? h(
        "p",
        {
          class: "voucher-terms",
          testid: "reward-voucher-terms",
          dataset: { faceValue: node.voucher.faceValue, minSpend: node.voucher.minSpend },
        },
        `${voucherOff(node.voucher)} · ${t("voucherDays", { days: node.voucher.validDays })}`,
      )
    : null;
  const green = node.tags.includes("green")
    ? h("span", { class: "badge green", testid: "reward-green" }, t("greenBadge"))
    : null;
  let stock = null;
  if (!node.available) {
    stock = h("span", { class: "badge sold", testid: "out-of-stock" }, t("outOfStock"));
  } else if (node.stock !== null) {
    stock = h("span", { class: "muted" }, t("inStock", { stock: node.stock }));
  }

  return h(
    "article",
    {
      class: node.available ? "reward card" : "reward card sold-out",
      testid: "reward-card",
      dataset: {
        rewardId: node.id,
        kind: node.kind,
        available: node.available,
        tags: node.tags.join(" "),
      },
    },
    h(
      "div",
      { class: "reward-head" },
      h("span", { class: "badge" }, t(`kind.${node.kind}`)),
      green,
      h("span", { class: "merchant-name", testid: "reward-merchant" }, node.merchant.name),
    ),
    h("h3", { testid: "reward-title" }, node.title),
    node.description ? h("p", { class: "desc muted" }, node.description) : null,
    opensAt
      ? h(
          "p",
          { class: "priority locked", testid: "reward-opens-at", dataset: { opensAt } },
          t("opensForYou", { time: formatDateTime(opensAt) }),
        )
      : null,
    early
      ? h(
          "p",
          { class: "priority early", testid: "reward-early-access" },
          t("earlyAccess", { time: formatDateTime(node.priorityUntil) }),
        )
      : null,
    terms,
    h(
      "div",
      { class: "price-row" },
      payable
        ? h(
            "span",
            { class: "price", testid: "reward-price", dataset: { points: price, program } },
            points(price, program),
          )
        : h(
            "span",
            { class: "price unpayable", testid: "reward-price", dataset: { program } },
            t("notPayable", { program }),
          ),
      ownPrice,
      stock,
    ),
    h(
      "div",
      { class: "reward-foot" },
      slotSelect ? h("label", { class: "slot" }, h("span", {}, t("slot")), slotSelect) : null,
      h("div", { class: "action-row" }, button, error),
      done,
    ),
  );
}

/** Draw the loaded rewards again (after a language switch). */
export function renderCatalog() {
  $("reward-grid").replaceChildren(...state.catalog.nodes.map(rewardCard));
  renderBanner();
  renderStatus();
}

/** Wire the filters and start watching the end of the list. */
export function initCatalog() {
  const filters = $("filters");
  filters.addEventListener("change", (event) => {
    if (event.target.name !== "search") readFilters();
  });
  let typing = null;
  filters.search.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(readFilters, 300);
  });
  filters.addEventListener("submit", (event) => event.preventDefault());
  document.addEventListener("mall:green-zone", (event) => {
    state.filters = { ...emptyFilters(), priceIn: event.detail };
    renderFilters();
    resetCatalog();
    $("catalog").scrollIntoView({ behavior: "smooth", block: "start" });
  });
  filters.addEventListener("reset", (event) => {
    event.preventDefault();
    state.filters = { ...emptyFilters(), priceIn: state.filters.priceIn };
    renderFilters();
    resetCatalog();
  });
  observer.observe($("catalog-sentinel"));
}
