// What the console knows now, shared by its parts, and the view the address names.

export const TZ =
  document.querySelector('meta[name="hub-settlement-tz"]')?.getAttribute("content") ||
  "Asia/Shanghai";

export const BATCH_PAGE = 20;

export const LINES_PAGE = 25;

export const state = {
  key: null,
  batches: { nodes: [], endCursor: null, hasNextPage: false, generation: 0 },
  view: 0, // bumped on every navigation, so a slow answer for an old view is dropped
  statement: null,
  lines: { cursors: [null], page: 0, hasNextPage: false, count: 0 },
  pendingRun: null,
};

/** The view the address names: home, a batch (by business date) or a statement (by id). */
export function currentRoute() {
  const match = /^#\/(batches|statements)\/(.+)$/.exec(location.hash);
  if (!match) return { kind: "home", value: null };
  return {
    kind: match[1] === "batches" ? "batch" : "statement",
    value: decodeURIComponent(match[2]),
  };
}
