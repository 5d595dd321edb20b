// The hub's public GraphQL API as a storefront calls it: POST /graphql with the
// STOREFRONT key and the member's session token, sending the checked-in documents
// of operations/ verbatim.

import { graphqlEndpoint, HubError, postGraphQL } from "/assets/graphql.js";

const ENDPOINT = graphqlEndpoint();
const documents = new Map();
let credentials = null;

// A failure the hub reported in `errors` (not a userError), or no answer at all.
export { HubError };

/** The member session is missing, invalid or expired: sign in again. */
export class SessionEnded extends HubError {}

/** Use this storefront key and member token for every call from now on (null: none). */
export function setCredentials(value) {
  credentials = value;
}

function operationDocument(name) {
  if (!documents.has(name)) {
    const url = new URL(`operations/${name}.graphql`, import.meta.url);
    const loading = fetch(url).then((response) => {
      if (!response.ok) throw new HubError(`${url.pathname}: HTTP ${response.status}`);
      return response.text();
    });
    // A failed load is not cached, so the next call tries again.
    loading.catch(() => documents.delete(name));
    documents.set(name, loading);
  }
  return documents.get(name);
}

/** Run operations/<name>.graphql; resolves to `data`, throws HubError on top-level errors. */
export async function gql(name, variables = {}) {
  const query = await operationDocument(name);
  const headers = {};
  if (credentials) {
    headers.Authorization = `Bearer ${credentials.key}`;
    headers["X-Member-Token"] = credentials.token;
  }
  try {
    return await postGraphQL(ENDPOINT, { query, variables, operationName: name, headers });
  } catch (error) {
    if (error.code === "UNAUTHENTICATED") throw new SessionEnded(error.message, error.code);
    throw error;
  }
}

/** A new idempotency key: one per intended action, reused when that action is retried. */
export function idempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // randomUUID exists only in secure contexts (https, localhost); a version-4 UUID otherwise.
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  const parts = [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20)];
  return [...parts, hex.slice(20)].join("-");
}
