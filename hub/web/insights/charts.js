// The insights charts, drawn by uPlot served by the hub itself (no CDN): points per day
// over the period, and bars for members by tier and the most redeemed rewards.
import uPlot from "/assets/vendor/uPlot.esm.js";

const COLORS = {
  issued: "#1f5fbf",
  redeemed: "#c2410c",
  expired: "#6b7280",
  green: "#15803d",
  bars: "#1e3a5f",
};

// Bars count whole things: ticks at whole steps only.
const WHOLE_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 50_000, 100_000];

const epoch = (date) => Date.parse(`${date}T00:00:00Z`) / 1000;
const width = (el) => Math.max(260, el.clientWidth || 560);

/** Issued, redeemed, expired (and green, when there is any) per business date. */
export function dailyChart(el, days) {
  el.replaceChildren();
  const x = days.map((d) => epoch(d.date));
  const series = [
    { label: "Issued", key: "pointsIssued", stroke: COLORS.issued },
    { label: "Redeemed", key: "pointsRedeemed", stroke: COLORS.redeemed },
    { label: "Expired", key: "pointsExpired", stroke: COLORS.expired },
  ];
  if (days.some((d) => d.greenPointsIssued !== 0)) {
    series.push({ label: "Green issued", key: "greenPointsIssued", stroke: COLORS.green });
  }
  return new uPlot(
    {
      width: width(el),
      height: 240,
      scales: { x: { time: true } },
      axes: [{}, { size: 70 }],
      series: [
        {},
        ...series.map((s) => ({
          label: s.label,
          stroke: s.stroke,
          width: 2,
          points: { show: x.length < 3 },
        })),
      ],
    },
    [x, ...series.map((s) => days.map((d) => d[s.key]))],
    el,
  );
}

/** One bar per label; labels are shown under the bars. */
export function barChart(el, label, labels, values) {
  el.replaceChildren();
  if (labels.length === 0) return null;
  const x = labels.map((_, i) => i);
  const short = labels.map((l) => (l.length > 22 ? `${l.slice(0, 21)}…` : l));
  return new uPlot(
    {
      width: width(el),
      height: 220,
      legend: { show: false },
      cursor: { points: { show: false } },
      scales: {
        x: { time: false, range: [-0.5, labels.length - 0.5] },
        y: { range: (_u, _min, max) => [0, Math.max(1, max) * 1.1] },
      },
      axes: [
        {
          splits: () => x,
          values: (_u, splits) => splits.map((i) => short[i] ?? ""),
          gap: 4,
        },
        { size: 60, incrs: WHOLE_STEPS },
      ],
      series: [
        {},
        {
          label,
          stroke: COLORS.bars,
          fill: "rgba(30, 58, 95, 0.55)",
          paths: uPlot.paths.bars({ size: [0.6, 80] }),
          points: { show: false },
        },
      ],
    },
    [x, values],
    el,
  );
}
