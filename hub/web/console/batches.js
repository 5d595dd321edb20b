// The sidebar's list of batches, newest first, a page at a time; and the trend card.

import { $, h } from "/assets/dom.js";
import { formatMoney } from "/assets/money.js";
import { gql, guarded } from "./api.js";
import { BATCH_PAGE, currentRoute, state } from "./state.js";
import { renderTrend, TREND } from "./trend.js";
import { plural } from "./ui.js";

const BATCHES = `query Batches($first: Int!, $after: String) {
  settlementBatches(first: $first, after: $after) {
    edges { cursor node { id businessDate status currency obligationCount grossAmount createdAt } }
    pageInfo { hasNextPage endCursor }
  }
}`;

/** The trend card: last 30 batches and open disputes; a failure here never blocks the rest. */
export async function refreshTrend() {
  await guarded(async () => renderTrend($("trend"), await gql(TREND)), $("trend-error"));
}

export async function reloadBatches() {
  state.batches = {
    nodes: [],
    endCursor: null,
    hasNextPage: false,
    generation: state.batches.generation + 1,
  };
  renderBatchList();
  await Promise.all([guarded(() => loadBatches(), $("batches-error")), refreshTrend()]);
}

export async function loadBatches() {
  const list = state.batches;
  const generation = list.generation;
  const data = await gql(BATCHES, { first: BATCH_PAGE, after: list.endCursor });
  if (generation !== state.batches.generation) return;
  const page = data.settlementBatches;
  list.nodes.push(...page.edges.map((e) => e.node));
  list.endCursor = page.pageInfo.endCursor;
  list.hasNextPage = page.pageInfo.hasNextPage;
  renderBatchList();
}

export function renderBatchList() {
  const { nodes, hasNextPage } = state.batches;
  const current = currentRoute();
  const selected = current.kind === "batch" ? current.value : state.statement?.businessDate;
  $("batch-list").replaceChildren(
    ...nodes.map((batch) =>
      h(
        "li",
        {},
        h(
          "a",
          {
            href: `#/batches/${batch.businessDate}`,
            class: "batch-item",
            testid: "batch-item",
            dataset: { date: batch.businessDate, status: batch.status },
            "aria-current": batch.businessDate === selected ? "page" : null,
          },
          h("span", { class: "date" }, batch.businessDate),
          h(
            "span",
            { class: "count" },
            plural(batch.obligationCount, "obligation"),
          ),
          h(
            "span",
            { class: "gross", dataset: { amount: batch.grossAmount } },
            `${formatMoney(batch.grossAmount)} ${batch.currency}`,
          ),
        ),
      ),
    ),
  );
  $("batches-empty").hidden = nodes.length > 0 || hasNextPage;
  $("batches-more").hidden = !hasNextPage;
}
