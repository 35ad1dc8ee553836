// A partner's TypeScript client: the types come from feedsvc's OpenAPI document
// (openapi-typescript writes generated/schema.d.ts), the calls go through openapi-fetch.
// tsc checks this file against the generated types before node runs it, so a schema that
// lost an enum or a body type fails the test at compile time.
//
//   node generated/js/client.js BASE_URL TOKEN  ->  one JSON line of what it saw
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/schema.js";

type Commentary = components["schemas"]["Commentary"];
type Trend = components["schemas"]["Trend"];

const [baseUrl, token] = process.argv.slice(2);
if (!baseUrl || !token) throw new Error("usage: client.js BASE_URL TOKEN");
const api = createClient<paths>({ baseUrl });
const auth = { Authorization: `Bearer ${token}` };

function titles(items: Commentary[]): string[] {
  return items.map((c) => c.title);
}

async function main(): Promise<void> {
  const first = await api.GET("/api/v1/commentaries", { params: { query: { limit: 2 } } });
  if (!first.data) throw new Error(`list: ${first.response.status}`);
  const second = await api.GET("/api/v1/commentaries", {
    params: { query: { limit: 2, cursor: first.data.next_cursor } },
  });
  if (!second.data) throw new Error(`second page: ${second.response.status}`);

  const worsened: Trend = "worsened";
  const created = await api.POST("/api/v1/commentaries", {
    headers: auth,
    body: {
      title: "Generated TypeScript client publishes",
      lang: "en",
      category: "regional-security",
      authors: [{ name: "Client Generator" }],
      body_markdown: "Published through **openapi-fetch**.",
      trend: worsened,
    },
  });
  if (!created.data) throw new Error(`create: ${created.response.status} ${JSON.stringify(created.error)}`);
  const etag = created.response.headers.get("ETag");
  if (!etag) throw new Error("create: no ETag");

  const patched = await api.PATCH("/api/v1/commentaries/{id}", {
    headers: auth,
    params: { path: { id: created.data.id }, header: { "If-Match": etag } },
    body: { title: "Generated TypeScript client patches", trend: "improved" },
  });
  if (!patched.data) throw new Error(`patch: ${patched.response.status} ${JSON.stringify(patched.error)}`);

  // @ts-expect-error "worse" is no Trend: the document's enum is a type here.
  const refused = await api.GET("/api/v1/commentaries", { params: { query: { trend: "worse" } } });
  const problems = refused.error?.extra;

  console.log(
    JSON.stringify({
      first: titles(first.data.items),
      second: titles(second.data.items),
      created: { id: created.data.id, title: created.data.title, trend: created.data.trend },
      patched: { id: patched.data.id, title: patched.data.title, trend: patched.data.trend, version: patched.data.version },
      refused: { status: refused.response.status, problems: Array.isArray(problems) ? problems : null },
    }),
  );
}

await main();
