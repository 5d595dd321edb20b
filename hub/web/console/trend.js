// The trend of the last 30 batches: net position per merchant, gross per day, and the
// disputes still open. Charts are drawn by uPlot, served by the hub itself (no CDN).
import { h } from "/assets/dom.js";
import uPlot from "/assets/vendor/uPlot.esm.js";

export const TREND = `query Trend {
  settlementBatches(first: 30) {
    edges { node { businessDate grossAmount positions { merchant { id name } net } } }
  }
  statements(status: DISPUTED, first: 100) {
    edges { node { id businessDate disputeReason merchant { id name } } }
  }
}`;

const PALETTE = ["#1f5fbf", "#c2410c", "#15803d", "#7e22ce", "#b91c1c", "#0e7490", "#a16207"];

// Charts only draw: figures shown as text elsewhere stay exact decimal strings.
const plotted = (amount) => Number(amount);
const epoch = (date) => Date.parse(`${date}T00:00:00Z`) / 1000;

/** The series the charts draw, oldest batch first. */
export function trendSeries(batches) {
  const ordered = [...batches].sort((a, b) => a.businessDate.localeCompare(b.businessDate));
  const merchants = new Map();
  for (const batch of ordered) {
    for (const p of batch.positions) merchants.set(p.merchant.id, p.merchant.name);
  }
  const x = ordered.map((b) => epoch(b.businessDate));
  const nets = [...merchants.keys()].map((id) =>
    ordered.map((b) => {
      const position = b.positions.find((p) => p.merchant.id === id);
      return position ? plotted(position.net) : 0;
    }),
  );
  return {
    x,
    merchants: [...merchants.entries()].map(([id, name]) => ({ id, name })),
    nets,
    gross: ordered.map((b) => plotted(b.grossAmount)),
  };
}

function chart(el, title, series, data) {
  el.replaceChildren();
  const width = Math.max(280, el.clientWidth || 600);
  return new uPlot(
    {
      title,
      width,
      height: 220,
      scales: { x: { time: true } },
      axes: [{}, { size: 70 }],
      series: [{}, ...series],
    },
    data,
    el,
  );
}

/** Draw the trend card. */
export function renderTrend(root, data) {
  const batches = data.settlementBatches.edges.map((e) => e.node);
  const disputes = data.statements.edges.map((e) => e.node);
  const { x, merchants, nets, gross } = trendSeries(batches);
  root.querySelector('[data-testid="trend-batches"]').textContent = String(batches.length);
  root.querySelector('[data-testid="trend-disputes"]').textContent = String(disputes.length);
  const list = root.querySelector('[data-testid="open-disputes"]');
  list.replaceChildren(
    ...disputes.map((d) =>
      h(
        "li",
        { testid: "open-dispute" },
        h("a", { href: `#/statements/${encodeURIComponent(d.id)}` }, `${d.merchant.name}`),
        ` · ${d.businessDate} · ${d.disputeReason ?? ""}`,
      ),
    ),
  );
  list.hidden = disputes.length === 0;
  const empty = batches.length === 0;
  root.querySelector('[data-testid="trend-empty"]').hidden = !empty;
  const netEl = root.querySelector('[data-testid="trend-net"]');
  const grossEl = root.querySelector('[data-testid="trend-gross"]');
  if (empty) {
    netEl.replaceChildren();
    grossEl.replaceChildren();
    return;
  }
  chart(
    netEl,
    "Net position per merchant",
    merchants.map((m, i) => ({
      label: m.name,
      stroke: PALETTE[i % PALETTE.length],
      width: 2,
      points: { show: x.length < 2 },
    })),
    [x, ...nets],
  );
  chart(
    grossEl,
    "Gross per day",
    [
      {
        label: "Gross",
        stroke: "#1f5fbf",
        fill: "rgba(31, 95, 191, 0.25)",
        paths: uPlot.paths.bars({ size: [0.6, 40] }),
        points: { show: false },
      },
    ],
    [x, gross],
  );
}
