// Shared helpers for the end-to-end tests. tools/test.mjs starts one local stack and
// passes its URLs in the environment; every test file talks to it over HTTP.

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { mailsTo, admin as adminWith, functionEnv, sleep } from "../../tools/stack.mjs";

export { sleep };

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the e2e tests through \`make test\` (tools/test.mjs)`);
  return v;
}

export const API_URL = need("E2E_API_URL");
export const SES_URL = need("E2E_SES_URL");
export const EVENTS_URL = need("E2E_EVENTS_URL");
export const DDB_URL = need("E2E_DDB_URL");
export const TABLE = need("E2E_TABLE");
export const LOG_DIR = need("E2E_LOG_DIR");
export const PREFIX = "/api/v1/contact-auth";
export const JSONAPI = "application/vnd.api+json";

/** Remembers a secret the tests saw, so the final check can prove no log holds it. */
export function recordSecret(value) {
  if (value) appendFileSync(join(LOG_DIR, "secrets.txt"), `${value}\n`);
}

export function uniqueEmail(tag = "m") {
  const email = `${tag}-${randomBytes(6).toString("hex")}@example.com`;
  recordSecret(email);
  return email;
}

/** One request; returns status, headers and the parsed body (or text). */
export async function call(method, path, { body, headers = {}, raw } = {}) {
  const h = { ...headers };
  let payload;
  if (raw !== undefined) payload = raw;
  else if (body !== undefined) {
    payload = JSON.stringify(body);
    if (!Object.keys(h).some((k) => k.toLowerCase() === "content-type")) h["Content-Type"] = JSONAPI;
  }
  const hosted = path === "/m" || path.startsWith("/m?") || path.startsWith("/m#");
  const url = path.startsWith("http") ? path : `${API_URL}${hosted ? "" : PREFIX}${path}`;
  const res = await fetch(url, { method, headers: h, body: payload, redirect: "manual" });
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, json, text };
}

export const doc = (type, attributes) => ({ data: { type, attributes } });

export function register(attributes) {
  return call("POST", "/register", { body: doc("register_requests", attributes) });
}

export function magic(attributes) {
  return call("POST", "/magic", { body: doc("magic_link_requests", attributes) });
}

export async function consume(token) {
  const r = await call("POST", "/magic/consume", { body: doc("magic_link_consumes", { token }) });
  if (r.json) {
    recordSecret(r.json.access_token);
    recordSecret(r.json.refresh_token);
  }
  return r;
}

/**
 * Consumes by sign-in code (v1.1): `attributes` = { email, code, slug | team_id,
 * code_verifier? }. Records every secret it sends or receives.
 */
export async function consumeCode(attributes) {
  recordCode(attributes.code);
  if (attributes.code_verifier) recordSecret(attributes.code_verifier);
  const r = await call("POST", "/magic/consume", { body: doc("magic_link_consumes", attributes) });
  if (r.json) {
    recordSecret(r.json.access_token);
    recordSecret(r.json.refresh_token);
  }
  return r;
}

/** Consumes a token with extra attributes (e.g. `{ code_verifier }`). */
export async function consumeWith(token, extra = {}) {
  if (extra.code_verifier) recordSecret(extra.code_verifier);
  const r = await call("POST", "/magic/consume", { body: doc("magic_link_consumes", { token, ...extra }) });
  if (r.json) {
    recordSecret(r.json.access_token);
    recordSecret(r.json.refresh_token);
  }
  return r;
}

/** A PKCE pair (RFC 7636 S256): a 43-character verifier and its challenge. */
export function pkcePair() {
  const verifier = randomBytes(32).toString("base64url");
  const challenge = createHash("sha256").update(verifier).digest("base64url");
  return { verifier, challenge };
}

/** The sign-in code of a register or sign-in mail, as typed (6 digits, no space). */
export function codeFrom(mail) {
  const m = /\b(\d{3}) (\d{3})\b/.exec(mail.body.text);
  if (!m) throw new Error("no sign-in code in mail");
  const code = m[1] + m[2];
  recordCode(code);
  return code;
}

/**
 * A code is too short for the plain substring check of the logs (any 6-digit run would
 * match): record it in the forms a leak would take, a logged body or a `code=` field.
 */
function recordCode(code) {
  recordSecret(`"code":"${code}"`);
  recordSecret(`code=${code}`);
}

export async function mails(to) {
  return mailsTo(SES_URL, to);
}

/** Waits until `to` has more than `already` emails; returns the newest. */
export async function waitForMail(to, already = 0, timeoutMs = 15000) {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    const list = await mails(to);
    if (list.length > already) return list[list.length - 1];
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no mail for ${to} within ${timeoutMs} ms`);
}

/**
 * Waits until `to` has a mail after the first `already` that carries a link; returns the
 * newest such mail (notices without a link, such as "your address is now on this
 * account", may arrive in between).
 */
export async function waitForLink(to, already = 0, timeoutMs = 15000) {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    const list = (await mails(to)).slice(already).filter((m) => /#token=/.test(m.body.text));
    if (list.length) return list[list.length - 1];
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no mail with a link for ${to} within ${timeoutMs} ms`);
}

export function tokenFrom(mail) {
  const m = /#token=([A-Za-z0-9_-]{43})/.exec(mail.body.text);
  if (!m) throw new Error("no token in mail");
  recordSecret(m[1]);
  return m[1];
}

/** Registers `email` on a hub and signs in through the emailed link. */
export async function signUp(email, attributes = { slug: "member-academy" }) {
  const before = (await mails(email)).length;
  const r = await register({ email, ...attributes });
  if (r.status !== 202) throw new Error(`register answered ${r.status}`);
  const token = tokenFrom(await waitForMail(email, before));
  const c = await consume(token);
  if (c.status !== 200) throw new Error(`consume answered ${c.status}`);
  return c.json;
}

/** A raw DynamoDB Local call (JSON protocol). */
export async function ddb(op, body) {
  const res = await fetch(DDB_URL, {
    method: "POST",
    headers: {
      "X-Amz-Target": `DynamoDB_20120810.${op}`,
      "Content-Type": "application/x-amz-json-1.0",
      Authorization: "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
    },
    body: JSON.stringify({ TableName: TABLE, ...body }),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${op}: ${JSON.stringify(json)}`);
  return json;
}

export const sha256 = (s) => createHash("sha256").update(s).digest("hex");

/** Waits until no mail job is left in the table (the mailer has processed them all). */
export async function mailerIdle(timeoutMs = 15000) {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    const jobs = await scanAll({ FilterExpression: "begins_with(pk, :j)", ExpressionAttributeValues: { ":j": { S: KEY_PREFIX.job } } });
    if (jobs.length === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("mail jobs still pending");
}

export function errorOf(r) {
  return r.json && r.json.errors && r.json.errors[0];
}

/** contact-auth-admin against the test stack's table (e.g. `admin("ban", "--team", t, "--email", e)`). */
export function admin(...args) {
  return adminWith(functionEnv({ ddbUrl: DDB_URL, sesUrl: SES_URL, table: TABLE, publicBaseUrl: API_URL }), ...args);
}

/**
 * An item key from the product's one key module (`contact-auth-admin key …`, which calls
 * `adapters::dynamo::keys`): e.g. `itemKey("magic", "--token", t)`, `itemKey("job",
 * "--id", id)`. Tests never spell item keys themselves.
 */
export function itemKey(kind, ...args) {
  // `--name=value`: a token may start with "-", which would otherwise read as a flag.
  const pairs = [];
  for (let i = 0; i < args.length; i += 2) pairs.push(`${args[i]}=${args[i + 1]}`);
  return JSON.parse(adminWith({}, "key", kind, ...pairs));
}

/** The key prefixes tests filter on (`job`, `rate`, `refresh`, `magic`, `contact`, `membership_sk`). */
export const KEY_PREFIX = JSON.parse(adminWith({}, "key", "prefixes"));

export const bearer = (t) => ({ Authorization: `Bearer ${t}` });

/** The claims of a JWT (not verified: for assertions only). */
export function claimsOf(jwt) {
  return JSON.parse(Buffer.from(jwt.split(".")[1], "base64url"));
}

/** Asserts a JSON:API error answer: status, code, media type and, when given, the pointer. */
export function assertError(r, status, code, pointer) {
  assert.equal(r.status, status, `${code}: ${r.status} ${r.text}`);
  const e = errorOf(r);
  assert.equal(e.code, code, r.text);
  assert.equal(r.headers.get("content-type"), JSONAPI);
  if (pointer) assert.equal(e.source.pointer, pointer);
}

/**
 * Asserts a JSON:API error answer as the fixture replay's verdict (testkit::verdict) does:
 * status, code, the pointer when given, errors[0].status as a string, a title and a detail,
 * meta.request_id = X-Request-ID, the JSON:API media type, nosniff and no-store.
 */
export function assertErrorDocument(r, status, code, pointer) {
  assert.equal(r.status, status, `${code}: ${r.status} ${r.text}`);
  const e = errorOf(r);
  assert.ok(e, `no JSON:API error document: ${r.text}`);
  assert.equal(e.code, code, r.text);
  assert.equal(e.status, String(status), r.text);
  assert.ok(typeof e.title === "string" && e.title && typeof e.detail === "string" && e.detail, `title and detail: ${r.text}`);
  const rid = r.headers.get("x-request-id");
  assert.ok(rid, "no X-Request-ID");
  assert.equal(e.meta && e.meta.request_id, rid, "meta.request_id repeats X-Request-ID");
  assert.equal(r.headers.get("content-type"), JSONAPI);
  assert.equal(r.headers.get("x-content-type-options"), "nosniff");
  assert.equal(r.headers.get("cache-control"), "no-store");
  if (pointer !== undefined) assert.equal(e.source && e.source.pointer, pointer, r.text);
}

/** Every item a Scan with `params` finds, over all pages (a filtered Scan pages too). */
export async function scanAll(params = {}) {
  const items = [];
  let start;
  do {
    const page = await ddb("Scan", { ...params, ConsistentRead: true, ...(start ? { ExclusiveStartKey: start } : {}) });
    items.push(...page.Items);
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

/** The whole table: "pk | sk" -> the item as canonical JSON (attributes sorted), sorted by key. */
export async function tableSnapshot() {
  // The events function's delivery marks on outbox items (written asynchronously by the
  // stack's dev-events after an earlier request) are its own bookkeeping, not a request's
  // write: left out. A new EVENT# item still shows as added.
  const MARKS = ["bus_at", "bus_outcome", "webhook_at", "webhook_outcome"];
  const unmarked = (it) => (it.pk.S.startsWith("EVENT#") ? Object.fromEntries(Object.entries(it).filter(([k]) => !MARKS.includes(k))) : it);
  const canon = (v) => JSON.stringify(v, (_, x) => (x && typeof x === "object" && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : x));
  const items = new Map((await scanAll()).map((it) => [`${it.pk.S} | ${it.sk.S}`, canon(unmarked(it))]));
  return new Map([...items].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * What differs between two snapshots, as "added|changed|deleted: <pk prefix> | <sk>" (no
 * addresses or ids in the message). A deleted item whose expires_at has passed is left out
 * (TTL may remove it), and so is every key `allowed(key)` exempts (e.g. RATE# counters).
 */
export function tableChanges(before, after, allowed = () => false) {
  const now = Math.floor(Date.now() / 1000);
  const out = [];
  for (const k of new Set([...before.keys(), ...after.keys()])) {
    if (before.get(k) === after.get(k) || allowed(k)) continue;
    const shown = `${k.split("#")[0]}# | ${k.split(" | ")[1]}`;
    if (!after.has(k)) {
      if (Number(JSON.parse(before.get(k)).expires_at?.N) <= now) continue;
      out.push(`deleted: ${shown}`);
    } else out.push(`${before.has(k) ? "changed" : "added"}: ${shown}`);
  }
  return out;
}

/** Records both tokens of a pair (for the secrets-in-logs check); returns the pair. */
export function remember(pair) {
  if (pair) { recordSecret(pair.access_token); recordSecret(pair.refresh_token); }
  return pair;
}

export const me = (access) => call("GET", "/me", { headers: bearer(access) });
export const patchMe = (access, attributes) => call("PATCH", "/me", { headers: bearer(access), body: doc("contacts", attributes) });
export const setPassword = (access, password) => call("POST", "/me/password", { headers: bearer(access), body: doc("password_sets", { password }) });
export const changePassword = (access, attributes) => call("POST", "/me/password/change", { headers: bearer(access), body: doc("password_changes", attributes) });
export const refreshBody = (token) => call("POST", "/refresh", { body: doc("refresh_requests", { refresh_token: token }) });

/** POST /login; a successful pair is recorded as secrets. */
export async function login(email, password, target = { slug: "member-academy" }) {
  const r = await call("POST", "/login", { body: doc("login_requests", { email, password, ...target }) });
  remember(r.json && r.json.access_token ? r.json : null);
  return r;
}

/** Signs an existing member in by a fresh magic link (waits for a mail with a link). */
export async function signIn(email, slug = "member-academy") {
  const before = (await mails(email)).length;
  const r = await send(magic, { email, slug });
  assert.equal(r.status, 202, r.text);
  const c = await consume(tokenFrom(await waitForLink(email, before)));
  assert.equal(c.status, 200, c.text);
  return c.json;
}

/** A register or magic request, waiting out the test stack's 2 s per-address cooldown. */
export async function send(fn, attributes) {
  for (let i = 0; i < 5; i++) {
    const r = await fn(attributes);
    if (r.status !== 429) return r;
    await sleep(Number(r.headers.get("retry-after") || 1) * 1000 + 100);
  }
  throw new Error("still rate limited");
}

/** The newest mail to `to` whose subject matches, waiting for it. */
export async function mailWithSubject(to, re, timeoutMs = 15000) {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    const found = (await mails(to)).filter((m) => re.test(m.subject));
    if (found.length) return found[found.length - 1];
    await sleep(100);
  }
  throw new Error(`no mail "${re}" for ${to}`);
}
