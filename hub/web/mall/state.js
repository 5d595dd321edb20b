// What the page knows now, shared by its parts.

/** The catalog filters as the member left them (priceIn: the program to price in and pay with). */
export function emptyFilters() {
  return { priceIn: null, category: "", merchant: "", kind: "", date: "", search: "" };
}

export const state = {
  member: null, // viewer.member: id, displayName, accounts
  directory: null, // merchants and programs, for the filters
  filters: emptyFilters(),
  catalog: { generation: 0, nodes: [], endCursor: null, hasNextPage: false, loading: false },
  unavailable: [], // merchants whose partner did not answer the last catalog page
  redemptions: { generation: 0, nodes: [], endCursor: null, hasNextPage: false },
  quote: null,
  quoteKey: null,
  quoteTimer: null,
  demoMembers: null,
};
