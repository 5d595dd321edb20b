// The member's redemptions, newest first, with cancel where the hub allows it and
// the refund and any compensation once cancelled.

import { gql, idempotencyKey } from "./api.js";
import { formatDate, formatDateTime, formatNumber, t, voucherOff } from "./i18n.js";
import { state } from "./state.js";
import { $, guarded, h, say, sayUserErrors } from "./ui.js";
import { refreshMember } from "./wallet.js";

const REDEMPTIONS_PAGE = 10;

/** The first page again (reset) or the next one after endCursor. */
export async function loadRedemptions(reset) {
  const r = state.redemptions;
  if (reset) r.generation += 1;
  const generation = r.generation;
  const data = await gql("Redemptions", {
    first: REDEMPTIONS_PAGE,
    after: reset ? null : r.endCursor,
  });
  const connection = data.viewer.member?.redemptions;
  if (!connection || generation !== r.generation) return;
  const nodes = connection.edges.map((e) => e.node);
  r.nodes = reset ? nodes : [...r.nodes, ...nodes];
  r.endCursor = connection.pageInfo.endCursor;
  r.hasNextPage = connection.pageInfo.hasNextPage;
  renderRedemptions();
}

/** Draw the loaded redemptions. */
export function renderRedemptions() {
  const r = state.redemptions;
  $("redemption-list").replaceChildren(...r.nodes.map(redemptionItem));
  $("redemptions-empty").hidden = r.nodes.length > 0;
  $("redemptions-more").hidden = !r.hasNextPage;
}

/** A voucher's code, to show at the till, while its redemption stands. */
function voucherBox(n) {
  const v = n.voucher;
  if (!v || n.status !== "CONFIRMED") return null;
  return h(
    "div",
    {
      class: v.usedAt ? "voucher used" : "voucher",
      testid: "voucher",
      dataset: { code: v.code, used: Boolean(v.usedAt) },
    },
    h("span", { class: "muted" }, t("voucherCode")),
    h("code", { class: "voucher-code", testid: "voucher-code" }, v.code),
    h("span", { class: "voucher-terms" }, voucherOff(v)),
    v.usedAt
      ? h(
          "span",
          { class: "muted", testid: "voucher-used" },
          t("voucherUsed", { order: v.orderRef, date: formatDateTime(v.usedAt) }),
        )
      : h(
          "span",
          { class: "muted", testid: "voucher-valid-until" },
          `${t("voucherValidUntil", { date: formatDate(v.validUntil) })} · ${t("voucherShow")}`,
        ),
  );
}

/** PENDING with a cancellation's reason: the merchant has yet to confirm the cancellation. */
function shownStatus(n) {
  return n.status === "PENDING" && n.cancellationReason ? "CANCELLING" : n.status;
}

function redemptionItem(n) {
  const program = n.paidWith.code;
  let cancelKey = null;
  const error = h("span", { class: "error", testid: "cancel-error", role: "alert", hidden: true });
  const cancel = n.cancellable
    ? h("button", { type: "button", class: "danger", testid: "cancel-button" }, t("cancel"))
    : null;
  cancel?.addEventListener("click", async () => {
    say(error, "");
    cancelKey ??= idempotencyKey();
    cancel.disabled = true;
    cancel.textContent = t("cancelling");
    await guarded(async () => {
      const data = await gql("CancelRedemption", {
        input: { redemptionId: n.id, reason: "MEMBER_REQUEST", idempotencyKey: cancelKey },
      });
      cancelKey = null;
      const payload = data.cancelRedemption;
      if (payload.userErrors.length > 0) {
        sayUserErrors(error, payload.userErrors);
        return;
      }
      await Promise.all([refreshMember(), loadRedemptions(true)]);
    }, error);
    if (cancel.isConnected) {
      cancel.disabled = false;
      cancel.textContent = t("cancel");
    }
  });
  return h(
    "li",
    {
      class: `redemption status-${n.status.toLowerCase()}`,
      testid: "redemption",
      dataset: { redemptionId: n.id, status: n.status },
    },
    h(
      "div",
      { class: "r-head" },
      h("strong", { testid: "redemption-title" }, n.reward.title),
      h("span", { class: "status", testid: "redemption-status" }, t(`status.${shownStatus(n)}`)),
    ),
    h(
      "div",
      { class: "muted" },
      n.reward.merchant.name,
      n.slot ? ` · ${formatDateTime(n.slot.startsAt)}` : "",
    ),
    h(
      "div",
      { class: "r-meta" },
      h(
        "span",
        { testid: "redemption-points", dataset: { points: n.points } },
        t("paid", { points: formatNumber(n.points), program }),
      ),
      // A voucher's code is what the member shows; the booking behind it is the hub's.
      n.fulfillmentRef && !n.voucher
        ? h("span", { class: "muted" }, t("booking", { ref: n.fulfillmentRef }))
        : null,
    ),
    voucherBox(n),
    // Why it failed, or why the merchant refused its cancellation (the merchant's words).
    n.failure
      ? h("div", { class: "muted", testid: "redemption-failure" }, n.failure.message)
      : null,
    n.refundedPoints > 0
      ? h(
          "div",
          { class: "refund", testid: "redemption-refund", dataset: { points: n.refundedPoints } },
          t("refunded", { points: formatNumber(n.refundedPoints), program }),
        )
      : null,
    n.compensationPoints > 0
      ? h(
          "div",
          {
            class: "compensation",
            testid: "redemption-compensation",
            dataset: { points: n.compensationPoints },
          },
          t("compensation", { points: formatNumber(n.compensationPoints), program }),
        )
      : null,
    cancel ? h("div", { class: "action-row" }, cancel, error) : null,
  );
}

/** Wire "show more". */
export function initRedemptions() {
  $("redemptions-more").addEventListener("click", () =>
    guarded(() => loadRedemptions(false), $("redemptions-error")),
  );
}
