// What the finance console and merchant insights draw alike, as /assets/page.css styles it:
// figure tiles and data tables.
//
// A data table is an empty <table class="data"> in the page, filled from its columns, so
// that a column's heading is said once, beside the cell that fills it. A column: `heading`,
// its text; `unseen` when only a screen reader says it; `th`, the heading's other attributes;
// `cell(item)`, the <td> it gives each item's row; `num` when it holds numbers (the heading
// and the cells are then of class num, which page.css aligns right).

import { $, h } from "/assets/dom.js";

/** A figure tile of a <dl class="figures">: `shown` under `label`; `data`: its dd's data-*. */
export function figure(label, shown, testid, tone = "", data = {}) {
  return h(
    "div",
    { class: `figure ${tone}`.trim() },
    h("dt", {}, label),
    h("dd", { testid, dataset: data }, shown),
  );
}

function headingCell({ heading = "", unseen = false, num = false, th = {} }) {
  const text = unseen ? h("span", { class: "visually-hidden" }, heading) : heading;
  return h("th", { scope: "col", class: num ? "num" : null, ...th }, text);
}

/**
 * Fill the data table with this testid: its columns' headings, then `rows` (<tr>s). With
 * `empty` (a testid), that note shows instead of the table when there are no rows.
 */
export function fillRows(testid, columns, rows, empty = null) {
  const table = $(testid);
  table.createTHead().replaceChildren(h("tr", {}, columns.map(headingCell)));
  (table.tBodies[0] ?? table.createTBody()).replaceChildren(...rows);
  if (empty) {
    table.hidden = rows.length === 0;
    $(empty).hidden = rows.length > 0;
  }
  return table;
}

function cell(column, item) {
  const td = column.cell(item);
  if (column.num) td.classList.add("num");
  return td;
}

/** Fill the data table with this testid, a row per item; `row(item)`: the row's attributes. */
export function fillTable(testid, columns, items, { row, empty = null }) {
  const rows = items.map((item) => h("tr", row(item), ...columns.map((c) => cell(c, item))));
  return fillRows(testid, columns, rows, empty);
}
