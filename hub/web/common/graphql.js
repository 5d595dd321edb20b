// One GraphQL request to the hub, as every page sends it: POST with a JSON body and the
// page's headers (its key, a member token). Each page turns the failures into its own words.

/** Where the hub answers GraphQL: the page's <meta name="hub-graphql">, else /graphql. */
export function graphqlEndpoint() {
  const meta = document.querySelector('meta[name="hub-graphql"]')?.getAttribute("content");
  return new URL(meta || "/graphql", location.href);
}

/**
 * A failure: the hub's first top-level error (`code`: its extensions.code), or no usable
 * answer (`code` "NETWORK"; `status` null when nothing answered, else the HTTP status).
 */
export class HubError extends Error {
  constructor(message, code = null, status = null) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

/** POST one document; resolves to `data`, throws HubError for anything else. */
export async function postGraphQL(url, { query, variables = {}, operationName, headers = {} }) {
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...headers },
      body: JSON.stringify({ query, variables, operationName }),
    });
  } catch (error) {
    throw new HubError(error.message || "network error", "NETWORK");
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON: a proxy's error page, say; reported below by status.
  }
  const first = body?.errors?.[0];
  if (first) throw new HubError(first.message, first.extensions?.code ?? null, response.status);
  if (!response.ok || !body?.data) {
    throw new HubError(`HTTP ${response.status}`, "NETWORK", response.status);
  }
  return body.data;
}
