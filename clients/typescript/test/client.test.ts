// Unit tests of the session layer against a scripted fetch (no server): what each call
// sends, when a refresh happens (both sides of every window, on an injected clock), what
// a failure does to the session, and what other tabs see.
import { test, mock } from "node:test";
import assert from "node:assert/strict";
import { challengeOf, ContactAuthError, createContactAuth, createVerifier, localStorageAdapter, memoryStorage } from "../src/index.js";
import type { AuthChangeEvent, ContactAuthOptions } from "../src/index.js";

const b64url = (s: string) => Buffer.from(s).toString("base64url");
let serial = 0;
function jwt(claims: Record<string, unknown> = {}) {
  serial++;
  return `${b64url('{"alg":"none"}')}.${b64url(JSON.stringify({ sub: "c1", tid: "team_abc123", sid: "s1", amr: ["magic_link"], auth_time: 1, iat: 1, exp: 2, jti: String(serial), ...claims }))}.sig`;
}
function pair(expiresIn = 900, refresh = `rt${serial + 1}`) {
  return { access_token: jwt(), token_type: "Bearer", expires_in: expiresIn, refresh_token: refresh, refresh_expires_in: 2592000 };
}
function json(status: number, body: unknown, headers: Record<string, string> = {}) {
  return new Response(body === undefined ? null : JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
}
function apiError(status: number, code: string, reason?: string, headers: Record<string, string> = {}) {
  return json(status, { errors: [{ status: String(status), code, title: code, detail: `detail of ${code}`, meta: { request_id: "req-1", ...(reason ? { reason } : {}) } }] }, headers);
}

interface Seen { method: string; path: string; body: any; headers: Headers; credentials: RequestCredentials }
/** A fetch that answers from `routes` ("POST /refresh" → handler) and records each request. */
function server(routes: Record<string, (body: any, req: Request) => Response | Promise<Response>>) {
  const seen: Seen[] = [];
  const fetch = async (req: Request) => {
    const path = new URL(req.url).pathname.replace("/api/v1/contact-auth", "");
    const text = await req.text();
    const body = text ? JSON.parse(text) : undefined;
    seen.push({ method: req.method, path, body, headers: req.headers, credentials: req.credentials });
    const h = routes[`${req.method} ${path}`];
    return h ? h(body, req) : apiError(404, "not_found");
  };
  return { fetch, seen, count: (route: string) => seen.filter((s) => `${s.method} ${s.path}` === route).length };
}

function client(fetch: ContactAuthOptions["fetch"], extra: Partial<ContactAuthOptions> = {}) {
  let t = 1_000_000;
  const c = createContactAuth({ baseUrl: "https://auth.example", hub: { slug: "member-academy" }, fetch, now: () => t, autoRefresh: false, channel: false, ...extra });
  return { c, advance: (s: number) => (t += s * 1000), at: () => t };
}

test("PKCE: the RFC 7636 example challenge, and verifiers of 43 URL-safe characters", async () => {
  assert.equal(await challengeOf("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
  const v = createVerifier();
  assert.match(v, /^[A-Za-z0-9_-]{43}$/);
  assert.notEqual(v, createVerifier());
});

test("requestLink binds the link to this browser; consume sends the verifier and forgets it once signed in", async () => {
  const s = server({ "POST /magic": () => json(202, undefined), "POST /magic/consume": () => json(200, { ...pair(), redirect_url: null }) });
  const storage = memoryStorage();
  const { c } = client(s.fetch, { storage });
  await c.requestLink({ email: "m@example.com", redirectUrl: "https://app.example/cb" });
  const sent = s.seen[0]!.body.data;
  assert.equal(sent.type, "magic_link_requests");
  assert.equal(sent.attributes.slug, "member-academy");
  assert.equal(sent.attributes.redirect_url, "https://app.example/cb");
  assert.equal(sent.attributes.code_challenge_method, "S256");
  const verifier = storage.get("pkce_verifier")!;
  assert.equal(sent.attributes.code_challenge, await challengeOf(verifier));
  assert.equal(JSON.stringify(sent).includes(verifier), false, "the verifier never leaves before consume");

  await c.consume("tok");
  const consume = s.seen[1]!.body.data;
  assert.deepEqual(consume, { type: "magic_link_consumes", attributes: { token: "tok", code_verifier: verifier } });
  assert.equal(storage.get("pkce_verifier"), null);
  assert.equal(c.session?.claims.sub, "c1");
});

test("consumeCode sends email, code, the hub and the verifier; register uses register_requests and sends the locale", async () => {
  const s = server({ "POST /register": () => json(202, undefined), "POST /magic/consume": () => json(200, { ...pair(), redirect_url: null }) });
  const { c } = client(s.fetch, { hub: { teamId: "team_abc123" }, locale: "de-AT" });
  await c.register({ email: "m@example.com" });
  assert.equal(s.seen[0]!.body.data.type, "register_requests");
  assert.equal(s.seen[0]!.body.data.attributes.team_id, "team_abc123");
  assert.equal(s.seen[0]!.body.data.attributes.locale, "de-AT");
  await c.consumeCode("m@example.com", "123 456");
  const a = s.seen[1]!.body.data.attributes;
  assert.equal(a.email, "m@example.com");
  assert.equal(a.code, "123 456");
  assert.equal(a.team_id, "team_abc123");
  assert.match(a.code_verifier, /^[A-Za-z0-9_-]{43}$/);
  await assert.rejects(c.requestLink({ email: "m@example.com", redirectUrl: "https://x.example" }), { code: "redirect_url_requires_slug" });
});

test("typed errors carry code, meta.reason, the request id and Retry-After", async () => {
  const s = server({
    "POST /magic/consume": () => apiError(401, "magic_link_invalid", "verifier_mismatch"),
    "POST /magic": () => apiError(429, "rate_limited", undefined, { "retry-after": "42" }),
  });
  const { c } = client(s.fetch);
  const e = await c.consume("tok").catch((x) => x);
  assert.ok(e instanceof ContactAuthError);
  assert.equal(e.status, 401);
  assert.equal(e.code, "magic_link_invalid");
  assert.equal(e.reason, "verifier_mismatch");
  assert.equal(e.requestId, "req-1");
  assert.equal(c.session, null);
  const r = await c.requestLink({ email: "m@example.com" }).catch((x) => x);
  assert.equal(r.code, "rate_limited");
  assert.equal(r.retryAfter, 42);
  const offline = createContactAuth({ baseUrl: "https://auth.example", hub: { slug: "h" }, channel: false, fetch: async () => { throw new TypeError("fetch failed"); } });
  assert.equal((await offline.requestLink({ email: "m@example.com" }).catch((x) => x)).code, "network_error");
});

test("a token is refreshed 60 s before expiry, not 61 s before; concurrent callers share one refresh", async () => {
  const s = server({ "POST /login": () => json(200, pair(900)), "POST /refresh": () => json(200, pair(900)) });
  const { c, advance } = client(s.fetch);
  const first = await c.login("m@example.com", "pw");
  advance(900 - 61);
  assert.equal(await c.getAccessToken(), first.accessToken);
  assert.equal(s.count("POST /refresh"), 0);
  advance(2);
  const [a, b, d] = await Promise.all([c.getAccessToken(), c.getAccessToken(), c.getAccessToken()]);
  assert.equal(s.count("POST /refresh"), 1, "single flight");
  assert.equal(a, b);
  assert.equal(a, d);
  assert.notEqual(a, first.accessToken);
});

test("a short-lived token is refreshed at half its lifetime (not before)", async () => {
  const s = server({ "POST /login": () => json(200, pair(10)), "POST /refresh": () => json(200, pair(10)) });
  const { c, advance } = client(s.fetch);
  await c.login("m@example.com", "pw");
  advance(4.9);
  await c.getAccessToken();
  assert.equal(s.count("POST /refresh"), 0);
  advance(0.2);
  await c.getAccessToken();
  assert.equal(s.count("POST /refresh"), 1);
});

test("the timer refreshes before expiry without any call (autoRefresh)", async () => {
  mock.timers.enable({ apis: ["setTimeout"] });
  try {
    const s = server({ "POST /login": () => json(200, pair(900)), "POST /refresh": () => json(200, pair(900)) });
    const events: AuthChangeEvent[] = [];
    const { c } = client(s.fetch, { autoRefresh: true });
    c.onAuthStateChange((e) => events.push(e));
    await c.login("m@example.com", "pw");
    mock.timers.tick((900 - 60) * 1000 - 1);
    await new Promise((r) => setImmediate(r));
    assert.equal(s.count("POST /refresh"), 0);
    mock.timers.tick(1);
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    assert.equal(s.count("POST /refresh"), 1);
    assert.deepEqual(events, ["SIGNED_IN", "TOKEN_REFRESHED"]);
    c.close();
  } finally {
    mock.timers.reset();
  }
});

test("cookie mode: the refresh token stays in the cookie (never stored), credentials include, no body token", async () => {
  const storage = memoryStorage();
  const s = server({ "POST /login": () => json(200, pair()), "POST /refresh": () => json(200, pair()), "POST /logout": () => json(204, undefined) });
  const { c, advance } = client(s.fetch, { storage });
  await c.login("m@example.com", "pw");
  assert.equal(c.session?.refreshToken, undefined);
  assert.equal(storage.get("session")!.includes("rt"), false);
  advance(900);
  await c.getAccessToken();
  const r = s.seen.find((x) => x.path === "/refresh")!;
  assert.equal(r.credentials, "include");
  assert.deepEqual(r.body, { data: { type: "refresh_requests" } });
  assert.equal(r.headers.get("refresh-cookie"), null);
  await c.signOut();
  assert.deepEqual(s.seen.at(-1)!.body, { data: { type: "refresh_requests" } });
  assert.equal(storage.get("session"), null);
});

test("body mode: the refresh token is kept, sent in the body and replaced on rotation; no cookies", async () => {
  const storage = memoryStorage();
  const s = server({ "POST /login": () => json(200, pair(900, "rt-A")), "POST /refresh": () => json(200, pair(900, "rt-B")), "POST /logout": () => json(204, undefined) });
  const { c, advance } = client(s.fetch, { storage, refresh: "body" });
  await c.login("m@example.com", "pw");
  assert.equal(c.session?.refreshToken, "rt-A");
  advance(900);
  await c.getAccessToken();
  const r = s.seen.find((x) => x.path === "/refresh")!;
  assert.equal(r.credentials, "omit");
  assert.deepEqual(r.body, { data: { type: "refresh_requests", attributes: { refresh_token: "rt-A" } } });
  assert.equal(JSON.parse(storage.get("session")!).refreshToken, "rt-B");
  await c.signOut();
  assert.deepEqual(s.seen.at(-1)!.body, { data: { type: "refresh_requests", attributes: { refresh_token: "rt-B" } } });
});

test("partitioned mode asks for the partitioned cookie on every call and sends credentials", async () => {
  const s = server({ "POST /login": () => json(200, pair()) });
  const { c } = client(s.fetch, { refresh: "partitioned" });
  await c.login("m@example.com", "pw");
  assert.equal(s.seen[0]!.headers.get("refresh-cookie"), "partitioned");
  assert.equal(s.seen[0]!.credentials, "include");
  assert.equal(c.session?.refreshToken, undefined);
});

test("a refused refresh (reused, invalid) signs out; a 503 keeps the session and throws", async () => {
  let answer = apiError(503, "unavailable", undefined, { "retry-after": "3" });
  const s = server({ "POST /login": () => json(200, pair()), "POST /refresh": () => answer });
  const storage = memoryStorage();
  const events: AuthChangeEvent[] = [];
  const { c, advance } = client(s.fetch, { storage });
  c.onAuthStateChange((e) => events.push(e));
  await c.login("m@example.com", "pw");
  advance(900);
  const e = await c.getAccessToken().catch((x) => x);
  assert.equal(e.code, "unavailable");
  assert.equal(e.retryAfter, 3);
  assert.notEqual(c.session, null);
  answer = apiError(401, "refresh_token_reused");
  assert.equal(await c.getAccessToken(), null);
  assert.equal(c.session, null);
  assert.equal(storage.get("session"), null);
  assert.deepEqual(events, ["SIGNED_IN", "SIGNED_OUT"]);
});

test("a 401 on a member route refreshes once and retries; a second 401 is the caller's", async () => {
  let meCalls = 0;
  const s = server({
    "POST /login": () => json(200, pair()),
    "POST /refresh": () => json(200, pair()),
    "GET /me": (_b, req) => {
      meCalls++;
      return meCalls === 1 ? apiError(401, "unauthorized") : json(200, { data: { type: "contacts", id: "c1", attributes: { auth: req.headers.get("authorization") } } });
    },
    "GET /me/sessions": () => apiError(401, "unauthorized"),
  });
  const { c } = client(s.fetch);
  const first = await c.login("m@example.com", "pw");
  const me = await c.me();
  assert.equal(s.count("POST /refresh"), 1);
  assert.notEqual((me.attributes as any).auth, `Bearer ${first.accessToken}`);
  assert.equal((me.attributes as any).auth, `Bearer ${c.session!.accessToken}`);
  await assert.rejects(c.sessions(), { code: "unauthorized" });
  assert.equal(s.count("POST /refresh"), 2, "one retry, not a loop");
});

test("cookie mode restores a session from the cookie at start (INITIAL_SESSION), once", async () => {
  const s = server({ "POST /refresh": () => json(200, pair()) });
  const events: [AuthChangeEvent, boolean][] = [];
  const { c } = client(s.fetch);
  c.onAuthStateChange((e, sess) => events.push([e, sess !== null]));
  await Promise.all([c.initialize(), c.initialize(), c.getAccessToken()]);
  assert.equal(s.count("POST /refresh"), 1);
  assert.deepEqual(events, [["INITIAL_SESSION", true]]);
  const none = server({ "POST /refresh": () => apiError(401, "refresh_token_missing") });
  const { c: c2 } = client(none.fetch);
  assert.equal(await c2.getAccessToken(), null);
  assert.equal(await c2.getAccessToken(), null);
  assert.equal(none.count("POST /refresh"), 1, "no retry storm when signed out");
});

test("tabs share a new pair and a sign-out over BroadcastChannel", async () => {
  const s = server({ "POST /login": () => json(200, pair(900, "rt-1")), "POST /logout": () => json(204, undefined) });
  const channel = `test-${Math.random()}`;
  const a = client(s.fetch, { channel, refresh: "body" }).c;
  const b = client(s.fetch, { channel, refresh: "body" }).c;
  const seenB: AuthChangeEvent[] = [];
  const got = new Promise<void>((r) => b.onAuthStateChange((e) => { seenB.push(e); if (e === "SIGNED_OUT") r(); }));
  await a.login("m@example.com", "pw");
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(b.session?.accessToken, a.session?.accessToken);
  assert.equal(b.session?.refreshToken, "rt-1");
  await a.signOut();
  await got;
  assert.deepEqual(seenB, ["SIGNED_IN", "SIGNED_OUT"]);
  assert.equal(b.session, null);
  assert.equal(s.count("POST /logout"), 1, "the other tab does not call logout again");
  a.close();
  b.close();
});

test("a tab in cookie mode drops a refresh token another tab sent it", async () => {
  const channel = `test-${Math.random()}`;
  const s = server({ "POST /login": () => json(200, pair(900, "rt-x")) });
  const sender = client(s.fetch, { channel, refresh: "body" }).c;
  const storage = memoryStorage();
  const cookieTab = client(s.fetch, { channel, storage }).c;
  await sender.login("m@example.com", "pw");
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(cookieTab.session?.refreshToken, undefined);
  assert.equal(storage.get("session")!.includes("rt-x"), false);
  sender.close();
  cookieTab.close();
});

test("handleRedirect consumes #token= and ignores a URL without one", async () => {
  const s = server({ "POST /magic/consume": () => json(200, { ...pair(), redirect_url: "https://app.example/cb" }) });
  const { c } = client(s.fetch);
  assert.equal(await c.handleRedirect("https://app.example/cb"), null);
  assert.equal(s.seen.length, 0);
  const r = await c.handleRedirect("https://app.example/cb?x=1#token=abc");
  assert.equal(s.seen[0]!.body.data.attributes.token, "abc");
  assert.ok(r && "access_token" in r);
});

test("localStorageAdapter uses its prefix; a stored session survives a new client", async () => {
  const m = new Map<string, string>();
  const store = { getItem: (k: string) => m.get(k) ?? null, setItem: (k: string, v: string) => void m.set(k, v), removeItem: (k: string) => void m.delete(k) } as Storage;
  const s = server({ "POST /login": () => json(200, pair()) });
  const { c } = client(s.fetch, { storage: localStorageAdapter("app:", store) });
  await c.login("m@example.com", "pw");
  assert.ok(m.has("app:session"));
  const again = client(s.fetch, { storage: localStorageAdapter("app:", store) }).c;
  assert.equal(again.session?.accessToken, c.session?.accessToken);
});

test("ending this session signs this client out; ending another does not", async () => {
  const s = server({ "POST /login": () => json(200, pair()), "DELETE /me/sessions/s2": () => json(204, undefined), "DELETE /me/sessions/s1": () => json(204, undefined) });
  const { c } = client(s.fetch);
  await c.login("m@example.com", "pw");
  await c.endSession("s2");
  assert.notEqual(c.session, null);
  await c.endSession("s1");
  assert.equal(c.session, null);
});
