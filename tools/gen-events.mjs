#!/usr/bin/env node
// Writes the fixtures under events/: API Gateway HTTP API (payload 2.0) events, DynamoDB
// stream events for the mailer and SNS events for ses-events, each with
// `<case>.expected.json` beside it.
// The files are committed; rerun this after changing a case (`node tools/gen-events.mjs`).
//
// Expected-file fields: status, code, pointer, headers (names that must be present),
// emails (mailer: mail sent to `to`), jobs_left (mailer: jobs still in the table after
// the event; default 0), repeat (send the event N times; the last answer
// counts), vary_email (a fresh address on every repeat), config (overrides, e.g.
// ip_per_minute), clock_offset (seconds the handler's clock is ahead), setup (see
// tests/replay.rs).
// Stronger checks of an HTTP answer (all optional; checked by testkit's verdict):
// - body: RFC 6901 JSON pointer into the response body (parsed as JSON) -> the exact
//   JSON value there (`null` must be present as null; a missing member fails);
// - body_strings: pointers whose value must be a non-empty string (values a fixture
//   cannot know: tokens, ids, timestamps, key ids);
// - body_empty: true when the response must have no body at all (202, 204);
// - header_values: header name (lower case) -> its exact value; the header must occur
//   exactly once;
// - header_contains: header name -> substrings that must all appear in its value
//   (Set-Cookie: name, HttpOnly, Secure, SameSite=Strict, Path; a cleared cookie also
//   an empty value and Max-Age=0).
// Only values the code fixes are asserted. refresh_expires_in counts from the token's own
// creation (flows::session::NewRefresh::lifetime), so a fresh sign-in's is exactly 2592000
// (asserted for magic-consume); a rotated token counts down to the session's absolute
// end, so refresh and password change leave it out, as does login (kept as it was).
// Also left out: Retry-After values; anything of the HTML page's body.

import { mkdirSync, writeFileSync, rmSync, readFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { admin } from "./stack.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const OUT = join(ROOT, "events");
const PREFIX = "/api/v1/contact-auth";
const JSONAPI = "application/vnd.api+json";
const TOKEN_A = "fixtureTokenAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".slice(0, 43);
const TOKEN_B = "fixtureTokenBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB".slice(0, 43);
// API Gateway's request id: the edge answers it as X-Request-ID (and in error meta).
const REQUEST_ID = "Kx1abcdEFgHIjkl=";

function apigw(method, path, { body, headers = {}, base64 = false, id } = {}) {
  const h = {
    accept: "*/*",
    host: "abc123xyz.execute-api.eu-west-1.amazonaws.com",
    "user-agent": "curl/8.5.0",
    "x-amzn-trace-id": "Root=1-6745c7a0-0123456789abcdef01234567",
    "x-forwarded-for": "203.0.113.10",
    "x-forwarded-port": "443",
    "x-forwarded-proto": "https",
    ...headers,
  };
  let b = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
  if (b !== undefined) h["content-length"] = String(Buffer.byteLength(b));
  if (b !== undefined && base64) b = Buffer.from(b).toString("base64");
  const ev = {
    version: "2.0",
    routeKey: `${method} ${path}`,
    rawPath: path,
    rawQueryString: "",
    headers: h,
    requestContext: {
      accountId: "123456789012",
      apiId: "abc123xyz",
      domainName: "abc123xyz.execute-api.eu-west-1.amazonaws.com",
      domainPrefix: "abc123xyz",
      http: { method, path, protocol: "HTTP/1.1", sourceIp: "203.0.113.10", userAgent: "curl/8.5.0" },
      requestId: id || REQUEST_ID,
      routeKey: `${method} ${path}`,
      stage: "$default",
      time: "26/Nov/2026:10:00:00 +0000",
      timeEpoch: 1795687200000,
    },
    isBase64Encoded: base64,
  };
  if (b !== undefined) ev.body = b;
  return ev;
}

const files = [];
function add(fn, name, event, expected) {
  files.push([join(OUT, fn, `${name}.json`), event]);
  files.push([join(OUT, fn, `${name}.expected.json`), expected]);
}

const ct = { "content-type": JSONAPI };
const post = (path, body, extra = {}) => apigw("POST", `${PREFIX}${path}`, { body, headers: { ...ct, ...(extra.headers || {}) }, ...extra });
const reg = (attributes, extra) => post("/register", { data: { type: "register_requests", attributes } }, extra);
const mag = (attributes, extra) => post("/magic", { data: { type: "magic_link_requests", attributes } }, extra);
const con = (attributes) => post("/magic/consume", { data: { type: "magic_link_consumes", attributes } });
// Headers the edge (edge::serve) puts on every answer.
const EDGE = { "x-request-id": REQUEST_ID, "x-content-type-options": "nosniff" };
// A JSON:API document (json_response): every error, and the `contacts` resource.
const JSONAPI_DOC = { ...EDGE, "content-type": JSONAPI, "cache-control": "no-store" };
// The token pair (flows::session::token_pair_response).
const PAIR_HEADERS = { ...EDGE, "content-type": "application/json", "cache-control": "no-store", pragma: "no-cache" };
const COOKIE = ["contact_refresh=", "HttpOnly", "Secure", "SameSite=Strict", `Path=${PREFIX}`];
const SET_COOKIE = { "set-cookie": COOKIE };
// A cleared refresh cookie: empty value, Max-Age=0.
const CLEARED_COOKIE = { "set-cookie": [...COOKIE, "contact_refresh=;", "Max-Age=0"] };
// The token pair body (top level, or under `meta` for a password change). Its
// refresh_expires_in is added only where it is exact (see the comment at the top).
const pairBody = (at = "") => ({ [`${at}/token_type`]: "Bearer", [`${at}/expires_in`]: 900 });
const pairStrings = (at = "") => [`${at}/access_token`, `${at}/refresh_token`];
// An answer with no body (202 of register/magic, 204 of logout and logout-everywhere).
const empty = (status, more = {}) => ({ status, ...more, body_empty: true, header_values: { ...EDGE, ...(more.header_values || {}) } });
// Errors: the JSON:API error document's headers (401 unauthorized also WWW-Authenticate).
const err = (status, code, pointer, more = {}) => ({
  status, code, ...(pointer ? { pointer } : {}), ...more,
  header_values: { ...JSONAPI_DOC, ...(code === "unauthorized" ? { "www-authenticate": "Bearer" } : {}), ...(more.header_values || {}) },
});

// register
add("register", "success-slug", reg({ email: "member@example.com", slug: "my-hub" }), empty(202));
add("register", "success-team-id", reg({ email: "member@example.com", team_id: "team_abc123" }), empty(202));
add("register", "success-redirect-url", reg({ email: "member@example.com", slug: "member-academy", redirect_url: "http://localhost:5173/welcome" }), empty(202));
add("register", "success-base64-body", reg({ email: "member@example.com", slug: "my-hub" }, { base64: true }), empty(202));
add("register", "email-local-part-not-ascii", reg({ email: "jörg@example.com", slug: "my-hub" }), err(422, "validation_error", "/data/attributes/email"));
add("register", "email-with-specials", reg({ email: "<member@example.com>", slug: "my-hub" }), err(422, "validation_error", "/data/attributes/email"));
// Issue 20: the request's language goes on the mail job: the `locale` attribute (a BCP 47
// tag) and the Accept-Language header; a malformed tag is 422.
const withHeaders = (ev, h) => ({ ...ev, headers: { ...ev.headers, ...h } });
add("register", "locale-and-accept-language", withHeaders(reg({ email: "member@example.com", slug: "my-hub", locale: "de-AT" }), { "accept-language": "fr-CH, fr;q=0.9" }), empty(202, { writes: [{ pk: "JOB#", attr: "locale" }, { pk: "JOB#", attr: "accept_language" }] }));
add("register", "locale-malformed", reg({ email: "member@example.com", slug: "my-hub", locale: "de_<script>" }), err(422, "validation_error", "/data/attributes/locale"));
add("magic", "locale-of-another-language-still-202", mag({ email: "member@example.com", slug: "my-hub", locale: "pt-BR" }), empty(202));
add("register", "email-idn-domain", reg({ email: "member@exämple.com", slug: "my-hub" }), empty(202));
add("register", "unknown-hub-still-202", reg({ email: "member@example.com", slug: "no-such-hub", redirect_url: "https://app.example.com/" }), empty(202));
add("register", "unknown-team-still-202", reg({ email: "member@example.com", team_id: "team_nope" }), empty(202));
add("register", "both-slug-and-team-id", reg({ email: "member@example.com", slug: "my-hub", team_id: "team_abc123" }), err(422, "validation_error", "/data/attributes"));
add("register", "neither-slug-nor-team-id", reg({ email: "member@example.com" }), err(422, "validation_error", "/data/attributes"));
add("register", "password-not-allowed", reg({ email: "member@example.com", slug: "my-hub", password: "hunter22hunter22" }), err(422, "password_not_allowed", "/data/attributes/password"));
add("register", "redirect-url-requires-slug", reg({ email: "member@example.com", team_id: "team_abc123", redirect_url: "http://localhost:5173/" }), err(422, "redirect_url_requires_slug", "/data/attributes/redirect_url"));
add("register", "redirect-url-origin-not-allowed", reg({ email: "member@example.com", slug: "member-academy", redirect_url: "https://evil.example.com/welcome" }), err(422, "redirect_url_not_allowed", "/data/attributes/redirect_url"));
add("register", "redirect-url-other-scheme-same-host", reg({ email: "member@example.com", slug: "member-academy", redirect_url: "https://localhost:5173/welcome" }), err(422, "redirect_url_not_allowed", "/data/attributes/redirect_url"));
add("register", "redirect-url-prefix-attack", reg({ email: "member@example.com", slug: "member-academy", redirect_url: "http://localhost:51730/welcome" }), err(422, "redirect_url_not_allowed", "/data/attributes/redirect_url"));
add("register", "redirect-url-not-absolute", reg({ email: "member@example.com", slug: "member-academy", redirect_url: "/welcome" }), err(422, "validation_error", "/data/attributes/redirect_url"));
add("register", "redirect-url-plain-http", reg({ email: "member@example.com", slug: "member-academy", redirect_url: "http://app.example.com/" }), err(422, "validation_error", "/data/attributes/redirect_url"));
add("register", "redirect-url-with-fragment", reg({ email: "member@example.com", slug: "member-academy", redirect_url: "http://localhost:5173/#x" }), err(422, "validation_error", "/data/attributes/redirect_url"));
add("register", "unknown-attribute", reg({ email: "member@example.com", slug: "my-hub", redirectUrl: "http://localhost:5173/" }), err(422, "unknown_attribute", "/data/attributes/redirectUrl"));
add("register", "invalid-email", reg({ email: "not-an-email", slug: "my-hub" }), err(422, "validation_error", "/data/attributes/email"));
add("register", "email-without-dot-in-domain", reg({ email: "member@localhost", slug: "my-hub" }), err(422, "validation_error", "/data/attributes/email"));
add("register", "missing-email", reg({ slug: "my-hub" }), err(422, "validation_error", "/data/attributes/email"));
add("register", "email-not-a-string", reg({ email: 42, slug: "my-hub" }), err(422, "validation_error", "/data/attributes/email"));
add("register", "invalid-slug", reg({ email: "member@example.com", slug: "../../etc" }), err(422, "validation_error", "/data/attributes/slug"));
add("register", "wrong-type", post("/register", { data: { type: "magic_link_requests", attributes: { email: "member@example.com", slug: "my-hub" } } }), err(409, "type_mismatch", "/data/type"));
add("register", "missing-data", post("/register", { email: "member@example.com" }), err(422, "validation_error", "/data"));
add("register", "attributes-not-object", post("/register", { data: { type: "register_requests", attributes: "x" } }), err(422, "validation_error", "/data/attributes"));
add("register", "malformed-json", post("/register", '{"data": {"type": "register_requests",'), err(400, "malformed_json"));
add("register", "unsupported-media-type", apigw("POST", `${PREFIX}/register`, { body: "email=member@example.com", headers: { "content-type": "application/x-www-form-urlencoded" } }), err(415, "unsupported_media_type"));
add("register", "payload-too-large", reg({ email: "member@example.com", slug: "my-hub", padding: "x".repeat(17000) }), err(413, "payload_too_large"));
add("register", "rate-limited-per-email", reg({ email: "member@example.com", slug: "my-hub" }), err(429, "rate_limited", null, { repeat: 2, headers: ["retry-after"] }));
add("register", "rate-limited-per-ip", reg({ email: "member@example.com", slug: "my-hub" }), err(429, "rate_limited", null, { repeat: 4, vary_email: true, config: { ip_per_minute: 3 }, headers: ["retry-after"] }));
add("register", "method-not-allowed", apigw("GET", `${PREFIX}/register`), err(405, "method_not_allowed", null, { header_values: { allow: "POST, OPTIONS" } }));
add("register", "cors-preflight", apigw("OPTIONS", `${PREFIX}/register`, { headers: { origin: "http://localhost:5173", "access-control-request-method": "POST", "access-control-request-headers": "content-type" } }), empty(204, {
  headers: ["access-control-allow-origin", "access-control-allow-credentials"],
  header_values: {
    "access-control-allow-origin": "http://localhost:5173", "access-control-allow-credentials": "true",
    "access-control-allow-methods": "POST, OPTIONS", "access-control-allow-headers": "Authorization, Content-Type, Refresh-Cookie, X-Request-ID",
    "access-control-max-age": "600", "access-control-expose-headers": "X-Request-ID, Retry-After, WWW-Authenticate",
  },
}));

// magic
add("magic", "success", mag({ email: "member@example.com", slug: "member-academy" }), empty(202));
add("magic", "success-code-challenge", mag({ email: "member@example.com", slug: "member-academy", code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", code_challenge_method: "S256" }), empty(202));
add("magic", "code-challenge-without-method", mag({ email: "member@example.com", slug: "member-academy", code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" }), err(422, "validation_error", "/data/attributes/code_challenge_method"));
add("magic", "code-challenge-method-plain", mag({ email: "member@example.com", slug: "member-academy", code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", code_challenge_method: "plain" }), err(422, "validation_error", "/data/attributes/code_challenge_method"));
add("magic", "code-challenge-malformed", mag({ email: "member@example.com", slug: "member-academy", code_challenge: "not-a-challenge", code_challenge_method: "S256" }), err(422, "validation_error", "/data/attributes/code_challenge"));
add("magic", "success-team-id", mag({ email: "member@example.com", team_id: "team_abc123" }), empty(202));
add("magic", "unknown-email-still-202", mag({ email: "nobody@example.com", slug: "member-academy" }), empty(202));
add("magic", "both-slug-and-team-id", mag({ email: "member@example.com", slug: "member-academy", team_id: "team_abc123" }), err(422, "validation_error", "/data/attributes"));
add("magic", "password-not-allowed", mag({ email: "member@example.com", slug: "member-academy", password: "x" }), err(422, "password_not_allowed", "/data/attributes/password"));
add("magic", "redirect-url-requires-slug", mag({ email: "member@example.com", team_id: "team_abc123", redirect_url: "http://localhost:5173/" }), err(422, "redirect_url_requires_slug", "/data/attributes/redirect_url"));
add("magic", "redirect-url-origin-not-allowed", mag({ email: "member@example.com", slug: "member-academy", redirect_url: "https://evil.example.com/" }), err(422, "redirect_url_not_allowed", "/data/attributes/redirect_url"));
add("magic", "wrong-type", post("/magic", { data: { type: "register_requests", attributes: { email: "member@example.com", slug: "member-academy" } } }), err(409, "type_mismatch", "/data/type"));
add("magic", "rate-limited-per-email", mag({ email: "member@example.com", slug: "member-academy" }), err(429, "rate_limited", null, { repeat: 2, headers: ["retry-after"] }));

// magic-consume
const linkSetup = (token, more = {}) => ({ op: "magic_link", token, email: "member@example.com", slug: "member-academy", ...more });
// A fresh sign-in: the full 30 days (see the comment at the top); no redirect was bound.
add("magic-consume", "success", con({ token: TOKEN_A }), {
  status: 200, setup: [linkSetup(TOKEN_A)], headers: ["set-cookie"],
  body: { ...pairBody(), "/refresh_expires_in": 2592000, "/redirect_url": null }, body_strings: pairStrings(),
  header_values: PAIR_HEADERS, header_contains: SET_COOKIE,
});
// A refused link or code: 401 magic_link_invalid with its meta.reason (v1.1).
const refused = (reason, more = {}) => err(401, "magic_link_invalid", null, { ...more, body: { "/errors/0/meta/reason": reason, ...(more.body || {}) } });
add("magic-consume", "unknown-token", con({ token: TOKEN_B }), refused("unknown"));
add("magic-consume", "malformed-token", con({ token: "not-a-token" }), refused("unknown"));
add("magic-consume", "already-used", con({ token: TOKEN_A }), refused("used", { setup: [linkSetup(TOKEN_A, { used: true })] }));
add("magic-consume", "expired", con({ token: TOKEN_A }), refused("expired", { setup: [linkSetup(TOKEN_A)], clock_offset: 901 }));
add("magic-consume", "superseded-token", con({ token: TOKEN_B }), refused("superseded", { setup: [linkSetup(TOKEN_B), linkSetup(TOKEN_A)] }));
add("magic-consume", "missing-token", con({}), err(422, "validation_error", "/data/attributes/token"));
add("magic-consume", "unknown-attribute", con({ token: TOKEN_A, redirectUrl: "https://app.example.com/" }), err(422, "unknown_attribute", "/data/attributes/redirectUrl"));
add("magic-consume", "token-and-code", con({ token: TOKEN_A, email: "member@example.com", code: "123456", slug: "member-academy" }), err(422, "validation_error", "/data/attributes"));

// Sign-in codes (v1.1): the fixture link carries code 123456 (hashed with the test keys).
const CODE = "123456";
const WRONG = "654321";
const byCode = (code, target = { slug: "member-academy" }, more = {}) => con({ email: "member@example.com", code, ...target, ...more });
const codeLink = (more = {}) => linkSetup(TOKEN_A, { code: CODE, ...more });
const pairOk = (setup) => ({
  status: 200, setup, headers: ["set-cookie"],
  body: { ...pairBody(), "/redirect_url": null }, body_strings: pairStrings(),
  header_values: PAIR_HEADERS, header_contains: SET_COOKIE,
});
add("magic-consume", "code-success", byCode("123 456"), pairOk([codeLink()]));
add("magic-consume", "code-success-team-id", byCode(CODE, { team_id: "team_abc123" }), pairOk([codeLink()]));
add("magic-consume", "code-wrong", byCode(WRONG), refused("invalid", { setup: [codeLink()] }));
add("magic-consume", "code-without-link", byCode(CODE), refused("invalid"));
add("magic-consume", "code-fifth-wrong", byCode(WRONG), refused("invalid", { setup: [codeLink({ code_attempts: 4 })] }));
add("magic-consume", "code-after-five-wrong", byCode(CODE), refused("invalid", { setup: [codeLink({ code_attempts: 5 })] }));
add("magic-consume", "token-after-five-wrong-codes", con({ token: TOKEN_A }), pairOk([codeLink({ code_attempts: 5 })]));
add("magic-consume", "code-per-email-cap", byCode(WRONG), err(429, "rate_limited", null, { setup: [codeLink()], repeat: 11, headers: ["retry-after"] }));
// Issue 17: one IP guessing across many addresses (never 10 on one) meets the per-IP code cap.
add("magic-consume", "code-per-ip-cap", byCode(WRONG), err(429, "rate_limited", null, { repeat: 4, vary_email: true, config: { code_attempts_per_ip_hour: 3 }, headers: ["retry-after"] }));
add("magic-consume", "code-after-link-used", byCode(CODE), refused("invalid", { setup: [codeLink({ used: true })] }));
add("magic-consume", "token-after-code-used", con({ token: TOKEN_A }), refused("used", { setup: [codeLink(), { op: "code_sign_in", email: "member@example.com", code: CODE, slug: "member-academy" }] }));
add("magic-consume", "code-of-superseded-link", byCode("111111"), refused("invalid", { setup: [linkSetup(TOKEN_B, { code: "111111" }), codeLink()] }));
add("magic-consume", "code-malformed", byCode("12345"), err(422, "validation_error", "/data/attributes/code"));
add("magic-consume", "code-without-email", con({ code: CODE, slug: "member-academy" }), err(422, "validation_error", "/data/attributes/email"));
// Same-device binding: the RFC 7636 example pair.
const VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const OTHER_VERIFIER = "a".repeat(43);
const boundLink = codeLink({ code_challenge: CHALLENGE });
add("magic-consume", "bound-token-without-verifier", con({ token: TOKEN_A }), refused("verifier_mismatch", { setup: [boundLink] }));
add("magic-consume", "bound-token-wrong-verifier", con({ token: TOKEN_A, code_verifier: OTHER_VERIFIER }), refused("verifier_mismatch", { setup: [boundLink] }));
add("magic-consume", "bound-token-right-verifier", con({ token: TOKEN_A, code_verifier: VERIFIER }), pairOk([boundLink]));
add("magic-consume", "bound-code-without-verifier", byCode(CODE), refused("verifier_mismatch", { setup: [boundLink] }));
add("magic-consume", "bound-code-right-verifier", byCode(CODE, { slug: "member-academy" }, { code_verifier: VERIFIER }), pairOk([boundLink]));
add("magic-consume", "unbound-token-ignores-verifier", con({ token: TOKEN_A, code_verifier: VERIFIER }), pairOk([codeLink()]));
add("magic-consume", "verifier-malformed", con({ token: TOKEN_A, code_verifier: "short" }), err(422, "validation_error", "/data/attributes/code_verifier"));
add("magic-consume", "wrong-type", post("/magic/consume", { data: { type: "magic_links", attributes: { token: TOKEN_A } } }), err(409, "type_mismatch", "/data/type"));

// jwks, hosted page
add("jwks", "success", apigw("GET", `${PREFIX}/.well-known/jwks.json`), {
  status: 200,
  // The current key and the published next one (rotate-key promotes it), both RS256.
  body: { "/keys/0/kty": "RSA", "/keys/0/alg": "RS256", "/keys/0/use": "sig", "/keys/0/e": "AQAB", "/keys/1/alg": "RS256" },
  body_strings: ["/keys/0/kid", "/keys/0/n", "/keys/1/kid"],
  header_values: { ...EDGE, "content-type": "application/json", "cache-control": "public, max-age=300" },
});
add("openid-configuration", "success", apigw("GET", `${PREFIX}/.well-known/openid-configuration`), {
  status: 200,
  // The issuer and jwks_uri depend on PUBLIC_BASE_URL (jwt-verifier.test.mjs checks them).
  body: { "/id_token_signing_alg_values_supported/0": "RS256", "/subject_types_supported/0": "public" },
  body_strings: ["/issuer", "/jwks_uri"],
  header_values: { ...EDGE, "content-type": "application/json", "cache-control": "public, max-age=300" },
});
// An HTML page: no body pointers.
add("hosted-page", "success", apigw("GET", "/m"), {
  status: 200, headers: ["content-security-policy", "referrer-policy"],
  header_values: { ...EDGE, "content-type": "text/html; charset=utf-8", "cache-control": "no-store", "x-frame-options": "DENY", "referrer-policy": "no-referrer" },
  header_contains: { "content-security-policy": ["default-src 'none'", "script-src 'nonce-", "frame-ancestors 'none'"] },
});

// The `contacts` resource (flows::account::contact_resource) of member@example.com, whom
// the session setup registers in team_abc123 (fresh: no terms, no pending change).
const contactDoc = ({ has_password = false, pending_email = null, tos_accepted_at = null, tos_version = null } = {}) => ({
  body: {
    "/data/type": "contacts",
    "/data/attributes/email": "member@example.com",
    "/data/attributes/has_password": has_password,
    "/data/attributes/tos_accepted_at": tos_accepted_at,
    "/data/attributes/tos_version": tos_version,
    "/data/attributes/pending_email": pending_email,
    "/data/attributes/team_memberships/0/team_id": "team_abc123",
  },
  body_strings: ["/data/id", "/data/attributes/email_verified_at", "/data/attributes/created_at", "/data/attributes/team_memberships/0/joined_at"],
  header_values: JSONAPI_DOC,
});

// me-get
const bearer = (t) => ({ headers: { authorization: `Bearer ${t}` } });
add("me-get", "success", apigw("GET", `${PREFIX}/me`, bearer("{{ACCESS_TOKEN}}")), { status: 200, setup: [{ op: "session", email: "member@example.com" }], ...contactDoc() });
add("me-get", "missing-token", apigw("GET", `${PREFIX}/me`), err(401, "unauthorized", null, { headers: ["www-authenticate"] }));
add("me-get", "garbage-token", apigw("GET", `${PREFIX}/me`, bearer("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")), err(401, "unauthorized", null, { headers: ["www-authenticate"] }));

// login, refresh, logout, logout-everywhere, me-patch, password-set, password-change
const session = { op: "session", email: "member@example.com" };
const withPassword = [session, { op: "password", password: "violet-kettle-harbour-42" }];
// A token pair answer (login, refresh); refresh_expires_in left out (see the top).
const pairDoc = { body: pairBody(), body_strings: pairStrings(), header_values: PAIR_HEADERS, header_contains: SET_COOKIE };
const login = (attributes) => post("/login", { data: { type: "login_requests", attributes } });
const askingPartitioned = (ev) => ({ ...ev, headers: { ...ev.headers, "refresh-cookie": "partitioned" } });
add("login", "partitioned-cookie", askingPartitioned(login({ email: "member@example.com", password: "violet-kettle-harbour-42", slug: "member-academy" })), { status: 200, setup: withPassword, config: { partitioned_cookie: true }, headers: ["set-cookie"], ...pairDoc, header_contains: { "set-cookie": ["contact_refresh_partitioned=", "SameSite=None", "Partitioned"] } });
add("login", "success", login({ email: "member@example.com", password: "violet-kettle-harbour-42", slug: "member-academy" }), { status: 200, setup: withPassword, headers: ["set-cookie"], ...pairDoc });
add("login", "wrong-password", login({ email: "member@example.com", password: "not-the-password", slug: "member-academy" }), err(401, "invalid_credentials", null, { setup: withPassword }));
add("login", "unknown-email", login({ email: "nobody@example.com", password: "violet-kettle-harbour-42", slug: "member-academy" }), err(401, "invalid_credentials"));
add("login", "no-password-set", login({ email: "member@example.com", password: "violet-kettle-harbour-42", slug: "member-academy" }), err(401, "invalid_credentials", null, { setup: [session] }));
add("login", "unknown-hub", login({ email: "member@example.com", password: "violet-kettle-harbour-42", slug: "no-such-hub" }), err(401, "invalid_credentials", null, { setup: withPassword }));
add("login", "neither-slug-nor-team-id", login({ email: "member@example.com", password: "x" }), err(422, "validation_error", "/data/attributes"));
add("login", "missing-password", login({ email: "member@example.com", slug: "member-academy" }), err(422, "validation_error", "/data/attributes/password"));
add("login", "wrong-type", post("/login", { data: { type: "register_requests", attributes: { email: "member@example.com", password: "x", slug: "member-academy" } } }), err(409, "type_mismatch", "/data/type"));
add("login", "too-many-failures", login({ email: "member@example.com", password: "not-the-password", slug: "member-academy" }), err(429, "rate_limited", null, { setup: withPassword, repeat: 11, headers: ["retry-after"] }));

// Side effects a success must have written (the replay checks them; see testkit verdict).
const TOKEN_VERSION = { pk: "CONTACT#", sk: "PROFILE", attr: "token_version" };
const PASSWORD_CHANGED = [TOKEN_VERSION, { pk: "CONTACT#", sk: "PROFILE", attr: "password_hash" }, { pk: "JOB#" }];
const refresh = (attributes) => post("/refresh", { data: { type: "refresh_requests", attributes } });
add("refresh", "success-body", refresh({ refresh_token: "{{REFRESH_TOKEN}}" }), { status: 200, setup: [session], headers: ["set-cookie"], ...pairDoc });
add("refresh", "success-cookie", apigw("POST", `${PREFIX}/refresh`, { headers: { cookie: "contact_refresh={{REFRESH_TOKEN}}" } }), { status: 200, setup: [session], ...pairDoc });
// Refresh mode C (README "Refresh modes"): a deployment that opted in (config
// partitioned_cookie) answers a request that asks with `Refresh-Cookie: partitioned` with
// its own SameSite=None; Partitioned cookie, and reads only that cookie for it; a
// deployment that did not opt in ignores the header and the partitioned cookie.
const PARTITIONED_COOKIE = { "set-cookie": ["contact_refresh_partitioned=", "HttpOnly", "Secure", "SameSite=None", "Partitioned", "Path=/api/v1/contact-auth"] };
const asksPartitioned = (cookie) => ({ headers: { "refresh-cookie": "partitioned", ...(cookie ? { cookie } : {}) } });
add("refresh", "partitioned-cookie", apigw("POST", `${PREFIX}/refresh`, asksPartitioned("contact_refresh_partitioned={{REFRESH_TOKEN}}")), { status: 200, config: { partitioned_cookie: true }, setup: [session], ...pairDoc, header_contains: PARTITIONED_COOKIE });
add("refresh", "partitioned-reads-only-its-cookie", apigw("POST", `${PREFIX}/refresh`, asksPartitioned("contact_refresh={{REFRESH_TOKEN}}")), err(401, "refresh_token_missing", null, { config: { partitioned_cookie: true }, setup: [session] }));
add("refresh", "partitioned-not-enabled", apigw("POST", `${PREFIX}/refresh`, asksPartitioned("contact_refresh_partitioned={{REFRESH_TOKEN}}")), err(401, "refresh_token_missing", null, { setup: [session] }));
add("logout", "partitioned-cookie", apigw("POST", `${PREFIX}/logout`, asksPartitioned("contact_refresh_partitioned={{REFRESH_TOKEN}}")), empty(204, { config: { partitioned_cookie: true }, setup: [session], headers: ["set-cookie"], header_contains: { "set-cookie": ["contact_refresh_partitioned=;", "Max-Age=0", "Partitioned", "SameSite=None"] }, writes: [{ pk: "RTFAMILY#" }] }));
add("refresh", "missing", apigw("POST", `${PREFIX}/refresh`), err(401, "refresh_token_missing"));
add("refresh", "unknown", refresh({ refresh_token: TOKEN_B }), err(401, "refresh_token_invalid"));
add("refresh", "unknown-attribute", refresh({ token: TOKEN_B }), err(422, "unknown_attribute", "/data/attributes/token"));
add("refresh", "two-cookies", apigw("POST", `${PREFIX}/refresh`, { headers: { cookie: "contact_refresh={{REFRESH_TOKEN}}; contact_refresh=fixtureTokenBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB" } }), err(401, "refresh_token_invalid", null, { setup: [session] }));
// Issue 17: the grace window on both sides (10 s: 9 s after the rotation a second tab gets a
// pair; 11 s after it is reuse, which must revoke the family), and a ban ends refreshing.
// 5 s, not 9: the same real-clock margin for `make invoke` (the exact 10 s edge is the
// unit test `refresh_decisions`).
add("refresh", "reused-within-grace", refresh({ refresh_token: "{{REFRESH_TOKEN}}" }), { status: 200, setup: [session, { op: "rotate" }], clock_offset: 5, headers: ["set-cookie"], ...pairDoc });
add("refresh", "reused-after-grace", refresh({ refresh_token: "{{REFRESH_TOKEN}}" }), err(401, "refresh_token_reused", null, { setup: [session, { op: "rotate" }], clock_offset: 11, writes: [{ pk: "RTFAMILY#" }] }));
add("refresh", "after-ban", refresh({ refresh_token: "{{REFRESH_TOKEN}}" }), err(401, "refresh_token_invalid", null, { setup: [session, { op: "ban" }] }));

add("logout", "with-cookie", apigw("POST", `${PREFIX}/logout`, { headers: { cookie: "contact_refresh={{REFRESH_TOKEN}}" } }), empty(204, { setup: [session], headers: ["set-cookie"], header_contains: CLEARED_COOKIE, writes: [{ pk: "RTFAMILY#" }] }));
add("logout", "two-cookies-revoke-nothing", apigw("POST", `${PREFIX}/logout`, { headers: { cookie: "contact_refresh={{REFRESH_TOKEN}}; contact_refresh=fixtureTokenBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB" } }), empty(204, { setup: [session], headers: ["set-cookie"], header_contains: CLEARED_COOKIE }));
add("logout", "without-token", apigw("POST", `${PREFIX}/logout`), empty(204, { headers: ["set-cookie"], header_contains: CLEARED_COOKIE }));
add("logout", "malformed-json", post("/logout", "{"), err(400, "malformed_json"));

add("logout-everywhere", "success", apigw("POST", `${PREFIX}/logout-everywhere`, bearer("{{ACCESS_TOKEN}}")), empty(204, { setup: [session], header_contains: CLEARED_COOKIE, writes: [TOKEN_VERSION] }));
add("logout-everywhere", "missing-token", apigw("POST", `${PREFIX}/logout-everywhere`), err(401, "unauthorized", null, { headers: ["www-authenticate"] }));

// Issue 19: the member's sessions. The setup's sign-in comes from 198.51.100.7 (testkit's
// post_event); a second `session` step is a second sign-in (its tokens replace the vars).
const sessionsPath = `${PREFIX}/me/sessions`;
const OTHER_SID = "0f0e0d0c-0b0a-4098-8765-43210fedcba9";
const deleteSession = (id, auth = bearer("{{ACCESS_TOKEN}}")) => {
  const ev = apigw("DELETE", `${sessionsPath}/${id}`, auth);
  ev.routeKey = ev.requestContext.routeKey = `DELETE ${sessionsPath}/{id}`;
  ev.pathParameters = { id };
  return ev;
};
add("me-sessions", "success", apigw("GET", sessionsPath, bearer("{{ACCESS_TOKEN}}")), {
  status: 200, setup: [session, session], header_values: JSONAPI_DOC,
  body: { "/meta/total": 2, "/data/0/type": "sessions", "/data/0/attributes/current": true, "/data/1/attributes/current": false, "/data/0/attributes/network": "198.51.100.0/24", "/data/0/attributes/amr": ["magic_link"] },
  body_strings: ["/data/0/attributes/created_at", "/data/0/attributes/last_active_at", "/data/0/attributes/device", "/data/1/id"],
});
add("me-sessions", "missing-token", apigw("GET", sessionsPath), err(401, "unauthorized", null, { headers: ["www-authenticate"] }));
add("me-session-delete", "success", deleteSession("{{SESSION_ID}}"), empty(204, { setup: [session], header_contains: CLEARED_COOKIE, writes: [{ pk: "RTFAMILY#" }, { pk: "EVENT#" }] }));
// Its own session needs no recent sign-in (a logout).
add("me-session-delete", "current-not-recent", deleteSession("{{SESSION_ID}}"), empty(204, { setup: [session], clock_offset: 601, header_contains: CLEARED_COOKIE, writes: [{ pk: "RTFAMILY#" }] }));
add("me-session-delete", "unknown", deleteSession(OTHER_SID), err(404, "session_not_found", null, { setup: [session] }));
add("me-session-delete", "other-not-recent", deleteSession(OTHER_SID), err(403, "reauthentication_required", null, { setup: [session], clock_offset: 601 }));
add("me-session-delete", "not-an-id", deleteSession("..%2F..%2Fadmin"), err(404, "session_not_found", null, { setup: [session] }));
add("me-session-delete", "missing-token", deleteSession(OTHER_SID, {}), err(401, "unauthorized", null, { headers: ["www-authenticate"] }));
add("logout-others", "success", apigw("POST", `${PREFIX}/logout-others`, bearer("{{ACCESS_TOKEN}}")), { status: 200, setup: [session, session], header_values: JSONAPI_DOC, body: { "/meta/ended": 1 }, writes: [{ pk: "RTFAMILY#" }] });
add("logout-others", "not-recent", apigw("POST", `${PREFIX}/logout-others`, bearer("{{ACCESS_TOKEN}}")), err(403, "reauthentication_required", null, { setup: [session, session], clock_offset: 601 }));
add("logout-others", "missing-token", apigw("POST", `${PREFIX}/logout-others`), err(401, "unauthorized", null, { headers: ["www-authenticate"] }));

const patchMe = (attributes, auth = bearer("{{ACCESS_TOKEN}}")) =>
  apigw("PATCH", `${PREFIX}/me`, { body: { data: { type: "contacts", attributes } }, headers: { ...ct, ...auth.headers } });
add("me-patch", "terms-of-service", patchMe({ tos_accepted_at: "2026-11-24T10:00:00Z", tos_version: "2026-11" }), { status: 200, setup: [session], ...contactDoc({ tos_accepted_at: "2026-11-24T10:00:00Z", tos_version: "2026-11" }) });
add("me-patch", "email-change-pending", patchMe({ email: "new-address@example.com" }), { status: 200, setup: [session], ...contactDoc({ pending_email: "new-address@example.com" }), writes: [{ pk: "CONTACT#", sk: "PROFILE", attr: "undo_chain" }, { pk: "JOB#" }] });
// Recent authentication on both sides of its 10 minutes (590 s: allowed; 601 s: beyond).
// 590, not 599: `make invoke` runs fixtures on the real clock, with a process start between
// the setup and the request (599 failed there under load). The exact edge, 599/600 s, is
// held by unit tests (domain::session) and replay scenarios with stopped clocks
// (members_end_one_session, logout_others_…).
add("me-patch", "email-change-recent", patchMe({ email: "new-address@example.com" }), { status: 200, setup: [session], clock_offset: 590, ...contactDoc({ pending_email: "new-address@example.com" }) });
add("me-patch", "email-change-rate-limited", patchMe({ email: "new-address@example.com" }), err(429, "rate_limited", null, { setup: [session], repeat: 2, headers: ["retry-after"] }));
add("me-patch", "invalid-date", patchMe({ tos_accepted_at: "soon" }), err(422, "validation_error", "/data/attributes/tos_accepted_at", { setup: [session] }));
add("me-patch", "read-only-attribute", patchMe({ has_password: true }), err(422, "unknown_attribute", "/data/attributes/has_password", { setup: [session] }));
// Sensitive changes need a sign-in less than 10 minutes old (the setup happened 601 s ago).
add("me-patch", "email-change-not-recent", patchMe({ email: "new-address@example.com" }), err(403, "reauthentication_required", null, { setup: [session], clock_offset: 601 }));
add("me-patch", "email-change-current-password-not-recent", patchMe({ email: "new-address@example.com", current_password: "violet-kettle-harbour-42" }), { status: 200, setup: withPassword, clock_offset: 601, ...contactDoc({ has_password: true, pending_email: "new-address@example.com" }) });
add("me-patch", "email-change-wrong-current-password", patchMe({ email: "new-address@example.com", current_password: "not-it-at-all" }), err(422, "current_password_incorrect", "/data/attributes/current_password", { setup: withPassword, clock_offset: 601 }));
add("me-patch", "current-password-without-email", patchMe({ current_password: "violet-kettle-harbour-42" }), err(422, "validation_error", "/data/attributes/current_password", { setup: withPassword }));
add("me-patch", "tos-year-zero", patchMe({ tos_accepted_at: "0000-01-01T00:00:00+00:01" }), err(422, "validation_error", "/data/attributes/tos_accepted_at", { setup: [session] }));
add("me-patch", "missing-token", patchMe({ tos_version: "1" }, { headers: {} }), err(401, "unauthorized"));

const pwSet = (attributes) => apigw("POST", `${PREFIX}/me/password`, { body: { data: { type: "password_sets", attributes } }, headers: { ...ct, authorization: "Bearer {{ACCESS_TOKEN}}" } });
add("password-set", "success", pwSet({ password: "violet-kettle-harbour-42" }), { status: 200, setup: [session], ...contactDoc({ has_password: true }) });
add("password-set", "not-recent", pwSet({ password: "violet-kettle-harbour-42" }), err(403, "reauthentication_required", null, { setup: [session], clock_offset: 601 }));
add("password-set", "already-set", pwSet({ password: "violet-kettle-harbour-42" }), err(409, "password_already_set", null, { setup: withPassword }));
add("password-set", "missing-token", apigw("POST", `${PREFIX}/me/password`, { body: { data: { type: "password_sets", attributes: { password: "x" } } }, headers: ct }), err(401, "unauthorized"));

// The contact with the new session's token pair under `meta` (no Pragma here).
const changedDoc = () => {
  const doc = contactDoc({ has_password: true });
  return { ...doc, body: { ...doc.body, ...pairBody("/meta") }, body_strings: [...doc.body_strings, ...pairStrings("/meta")], header_contains: SET_COOKIE };
};
const pwChange = (attributes) => apigw("POST", `${PREFIX}/me/password/change`, { body: { data: { type: "password_changes", attributes } }, headers: { ...ct, authorization: "Bearer {{ACCESS_TOKEN}}" } });
add("password-change", "success", pwChange({ current_password: "violet-kettle-harbour-42", new_password: "amber-lantern-orchard-17" }), { status: 200, setup: withPassword, headers: ["set-cookie"], ...changedDoc(), writes: PASSWORD_CHANGED });
add("password-change", "forgotten-password-after-magic-link", pwChange({ new_password: "amber-lantern-orchard-17" }), { status: 200, setup: withPassword, ...changedDoc(), writes: PASSWORD_CHANGED });
add("password-change", "forgotten-password-too-late", pwChange({ new_password: "amber-lantern-orchard-17" }), err(403, "reauthentication_required", null, { setup: withPassword, clock_offset: 601 }));
add("password-change", "current-password-incorrect", pwChange({ current_password: "not-it-at-all", new_password: "amber-lantern-orchard-17" }), err(422, "current_password_incorrect", "/data/attributes/current_password", { setup: withPassword }));
add("password-change", "wrong-current-password-rate-limited", pwChange({ current_password: "not-it-at-all", new_password: "amber-lantern-orchard-17" }), err(429, "rate_limited", null, { setup: withPassword, repeat: 11, headers: ["retry-after"] }));
add("password-change", "password-not-set", pwChange({ current_password: "x", new_password: "amber-lantern-orchard-17" }), err(400, "password_not_set", null, { setup: [session] }));

// mailer: DynamoDB stream events (the shape Lambda delivers; the filter in template.yaml
// passes only INSERTs of mail jobs, the handler checks again).
// `withImage`: put the job's image on the record even for a REMOVE (see remove-event-ignored).
function streamEvent(eventName, image, { withImage = eventName !== "REMOVE" } = {}) {
  const record = {
    eventID: "c81e728d9d4c2f636f067f89cc14862c",
    eventName,
    eventVersion: "1.1",
    eventSource: "aws:dynamodb",
    awsRegion: "eu-west-1",
    dynamodb: {
      ApproximateCreationDateTime: 1795687200,
      Keys: { pk: { S: image.pk.S }, sk: { S: image.sk.S } },
      SequenceNumber: "111100000000012345678901",
      SizeBytes: 312,
      StreamViewType: "NEW_IMAGE",
    },
    eventSourceARN: "arn:aws:dynamodb:eu-west-1:123456789012:table/contact-auth-ContactTable-ABC/stream/2026-11-26T10:00:00.000",
  };
  if (withImage) record.dynamodb.NewImage = image;
  return { Records: [record] };
}
// The job's item key comes from the product's key module (`contact-auth-admin key job`;
// build it first: `cargo build --bin contact-auth-admin`); testkit/tests/tables.rs
// checks every committed stream fixture against it.
const jobKey = (jobId) => JSON.parse(admin({}, "key", "job", `--id=${jobId}`));
const jobImage = (jobId, purpose, email, target) => ({
  ...jobKey(jobId), kind: { S: "mail_job" }, job_id: { S: jobId },
  purpose: { S: purpose }, email: { S: email }, email_key: { S: email.toLowerCase() },
  slug: target.slug ? { S: target.slug } : { NULL: true }, team_id: target.team_id ? { S: target.team_id } : { NULL: true },
  redirect_url: { NULL: true }, created_at: { N: "1795687200" }, expires_at: { N: "1795773600" },
});
const jobSetup = (jobId, purpose, email, target) => ({ op: "job", job_id: jobId, purpose, email, ...target });
add("mailer", "register-new-email-sends-link", streamEvent("INSERT", jobImage("job-fixture-1", "register", "new-member@example.com", { slug: "member-academy" })),
  { emails: 1, to: "new-member@example.com", subject: "Confirm your email for Member Academy", setup: [jobSetup("job-fixture-1", "register", "new-member@example.com", { slug: "member-academy" })] });
add("mailer", "register-by-team-id-names-primary-hub", streamEvent("INSERT", jobImage("job-fixture-2", "register", "team-member@example.com", { team_id: "team_abc123" })),
  { emails: 1, to: "team-member@example.com", subject: "Confirm your email for Member Academy", setup: [jobSetup("job-fixture-2", "register", "team-member@example.com", { team_id: "team_abc123" })] });
add("mailer", "magic-unknown-email-sends-nothing", streamEvent("INSERT", jobImage("job-fixture-3", "magic", "stranger@example.com", { slug: "member-academy" })),
  { emails: 0, to: "stranger@example.com", setup: [jobSetup("job-fixture-3", "magic", "stranger@example.com", { slug: "member-academy" })] });
add("mailer", "magic-existing-member-sends-sign-in", streamEvent("INSERT", jobImage("job-fixture-4", "magic", "member@example.com", { slug: "my-hub" })),
  { emails: 1, to: "member@example.com", subject: "Sign in to My Hub", setup: [{ op: "session", email: "member@example.com" }, jobSetup("job-fixture-4", "magic", "member@example.com", { slug: "my-hub" })] });
add("mailer", "redelivered-record-sends-nothing", streamEvent("INSERT", jobImage("job-fixture-5", "register", "again@example.com", { slug: "member-academy" })),
  { emails: 0, to: "again@example.com" });
// Issue 20: the mail's language. The job's `locale` (the request's attribute) wins over
// its Accept-Language; Accept-Language wins over the hub's default; subjects that are not
// ASCII go out as RFC 2047 encoded-words (the expected subject is the header as sent).
const jobImageWith = (jobId, purpose, email, target, extra) => ({ ...jobImage(jobId, purpose, email, target), ...Object.fromEntries(Object.entries(extra).map(([k, v]) => [k, { S: v }])) });
// The subject a mail in `locale` goes out with: the catalog's text (shared/i18n), and when
// it is not ASCII, RFC 2047 encoded-words of at most 45 bytes of UTF-8 each.
const catalog = (locale) => JSON.parse(readFileSync(join(ROOT, "shared", "i18n", `${locale}.json`), "utf8"));
function subjectIn(locale, key, hub) {
  const text = catalog(locale)[key].replaceAll("{hub}", hub);
  if (/^[\x20-\x7e]*$/.test(text)) return text;
  const words = [];
  let chunk = "";
  for (const ch of text) {
    if (Buffer.byteLength(chunk + ch) > 45) {
      words.push(chunk);
      chunk = "";
    }
    chunk += ch;
  }
  if (chunk) words.push(chunk);
  return words.map((w) => `=?UTF-8?B?${Buffer.from(w).toString("base64")}?=`).join(" ");
}
add("mailer", "register-in-the-requested-locale", streamEvent("INSERT", jobImageWith("job-fixture-7", "register", "neues-mitglied@example.com", { slug: "member-academy" }, { locale: "de", accept_language: "fr" })),
  { emails: 1, to: "neues-mitglied@example.com", subject: subjectIn("de", "mail.register.subject", "Member Academy"), setup: [{ ...jobSetup("job-fixture-7", "register", "neues-mitglied@example.com", { slug: "member-academy" }), locale: "de", accept_language: "fr" }] });
add("mailer", "register-by-accept-language", streamEvent("INSERT", jobImageWith("job-fixture-8", "register", "nouveau@example.com", { slug: "member-academy" }, { accept_language: "fr-CH, fr;q=0.9, en;q=0.5" })),
  { emails: 1, to: "nouveau@example.com", subject: subjectIn("fr", "mail.register.subject", "Member Academy"), setup: [{ ...jobSetup("job-fixture-8", "register", "nouveau@example.com", { slug: "member-academy" }), accept_language: "fr-CH, fr;q=0.9, en;q=0.5" }] });
// A REMOVE of a job that IS in the table, with the job's image on the record (Lambda sends
// none with NEW_IMAGE; it is here so that a mailer reading every record's image instead
// of only INSERTs' would find this job and send a confirmation): only the eventName
// check stands between it and a mail.
add("mailer", "remove-event-ignored", streamEvent("REMOVE", jobImage("job-fixture-6", "register", "gone@example.com", { slug: "member-academy" }), { withImage: true }),
  { emails: 0, to: "gone@example.com", jobs_left: 1, setup: [jobSetup("job-fixture-6", "register", "gone@example.com", { slug: "member-academy" })] });

// An address SES reported undeliverable gets no mail; the job is retired (the request
// that queued it answered 202 long ago).
add("mailer", "suppressed-address-sends-nothing", streamEvent("INSERT", jobImage("job-fixture-7", "magic", "member@example.com", { slug: "my-hub" })),
  { emails: 0, to: "member@example.com", setup: [{ op: "session", email: "member@example.com" }, { op: "suppress", email: "member@example.com", reason: "bounce" }, jobSetup("job-fixture-7", "magic", "member@example.com", { slug: "my-hub" })] });

// events: stream records of outbox event items (codec::event_item). The expected `body`
// is the function's answer (no batch item failures); `bus_events` how many entries the
// stack's EventBridge stand-in got for the fixture's event ids.
const eventKey = (id) => JSON.parse(admin({}, "key", "event", `--id=${id}`));
const eventImage = (id, type, extra = {}) => ({
  ...eventKey(id), kind: { S: "auth_event" }, event_id: { S: id }, type: { S: type },
  at: { N: "1795687200" }, contact_id: { S: "0b0c5e3a-3b41-4f0e-9d0e-5f1c2a7b8c9d" }, team_id: { S: "team_abc123" },
  expires_at: { N: "1796292000" }, ...extra,
});
const noFailures = { "/batchItemFailures": [] };
add("events", "session-created-to-the-bus", streamEvent("INSERT", eventImage("evt-fixture-1", "session.created", { session_id: { S: "3c0b8c1e-52f4-4d55-9d61-8f3c9a0e2b71" }, hub_id: { S: "hub_member_academy" } })), { body: noFailures, bus_events: 1 });
add("events", "session-ended-with-reason", streamEvent("INSERT", eventImage("evt-fixture-2", "session.ended", { session_id: { S: "3c0b8c1e-52f4-4d55-9d61-8f3c9a0e2b71" }, reason: { S: "revoked" } })), { body: noFailures, bus_events: 1 });
// One fixture per event type (each as the change's transaction writes it).
const SID = { S: "9a4e2f10-7c1d-4b8e-a5f2-0d6b3e8c1f42" };
const EVERY_EVENT = [
  ["contact.created", { hub_id: { S: "hub_member_academy" } }],
  ["membership.created", { hub_id: { S: "hub_member_academy" } }],
  ["session.reuse_detected", { session_id: SID, reason: { S: "reuse" } }],
  ["session.ended", { reason: { S: "logout_everywhere" } }],
  ["email_change.requested", {}],
  ["email_change.confirmed", {}],
  ["email_change.undone", {}],
  ["password.set", {}],
  ["password.changed", {}],
  ["membership.banned", {}],
  ["membership.unbanned", {}],
];
EVERY_EVENT.forEach(([type, extra], i) => {
  add("events", `type-${type.replace(/[._]/g, "-")}`, streamEvent("INSERT", eventImage(`evt-fixture-type-${i}`, type, extra)), { body: noFailures, bus_events: 1 });
});
// The marks written on an event item come back through the stream as MODIFY: ignored.
add("events", "modify-ignored", streamEvent("MODIFY", eventImage("evt-fixture-3", "session.created")), { body: noFailures, bus_events: 0 });
add("events", "mail-job-ignored", streamEvent("INSERT", jobImage("job-fixture-9", "register", "new-member@example.com", { slug: "member-academy" })), { body: noFailures, bus_events: 0 });
add("events", "unknown-type-ignored", streamEvent("INSERT", eventImage("evt-fixture-4", "contact.teleported")), { body: noFailures, bus_events: 0 });

// ses-events: SNS events carrying SES sending events (the configuration set publishes
// bounces and complaints; the message is SES's event record as a JSON string). The
// expected `body` is the function's result (its summary); without `writes`, the table
// must be unchanged.
function snsEvent(...messages) {
  const topic = "arn:aws:sns:eu-west-1:123456789012:contact-auth-SesEventsTopic-ABC";
  return {
    Records: messages.map((m, i) => ({
      EventSource: "aws:sns",
      EventVersion: "1.0",
      EventSubscriptionArn: `${topic}:2bcfbf39-05c3-41de-beaa-fcfcc21c8f5${i}`,
      Sns: {
        Type: "Notification",
        MessageId: `95df01b4-ee98-5cb9-9903-4c221d41eb5${i}`,
        TopicArn: topic,
        Subject: null,
        Message: typeof m === "string" ? m : JSON.stringify(m),
        Timestamp: "2026-12-05T10:00:00.000Z",
        SignatureVersion: "1",
        Signature: "EXAMPLE",
        SigningCertUrl: "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem",
        UnsubscribeUrl: "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
        MessageAttributes: {},
      },
    })),
  };
}
const sesMail = (to) => ({ timestamp: "2026-12-05T09:59:58.012Z", source: "Member Academy <no-reply@example.com>", sendingAccountId: "123456789012", messageId: "0102018f-example-000000", destination: [to], headersTruncated: false, tags: { "ses:configuration-set": ["contact-auth-SesConfigurationSet-ABC"] } });
const bounce = (to, bounceType) => ({ eventType: "Bounce", bounce: { bounceType, bounceSubType: "General", bouncedRecipients: [{ emailAddress: to, action: "failed", status: "5.1.1", diagnosticCode: "smtp; 550 5.1.1 user unknown" }], timestamp: "2026-12-05T10:00:00.669Z", feedbackId: "0102018f-feedback-000000", reportingMTA: "dsn; mta.example.com" }, mail: sesMail(to) });
const complaint = (to) => ({ eventType: "Complaint", complaint: { complainedRecipients: [{ emailAddress: to }], timestamp: "2026-12-05T10:00:00.669Z", feedbackId: "0102018f-feedback-000001", userAgent: "Mozilla/5.0", complaintFeedbackType: "abuse", arrivalDate: "2026-12-05T10:00:00.669Z" }, mail: sesMail(to) });
const summary = (counts) => Object.fromEntries(Object.entries({ records: 1, suppressed: 0, ...counts }).map(([k, v]) => [`/${k}`, v]));
add("ses-events", "success", snsEvent(bounce("member@example.com", "Permanent")),
  { body: summary({ suppressed: 1, bounce_permanent: 1 }), setup: [{ op: "session", email: "member@example.com" }],
    writes: [{ pk: "SUPPRESS#" }, { pk: "CONTACT#", sk: "PROFILE", attr: "mail_suppressed_at" }] });
add("ses-events", "complaint-suppresses-an-address-without-account", snsEvent(complaint("Someone <someone@example.com>")),
  { body: summary({ suppressed: 1, complaint: 1 }), writes: [{ pk: "SUPPRESS#" }] });
add("ses-events", "transient-bounce-changes-nothing", snsEvent(bounce("member@example.com", "Transient")),
  { body: summary({ bounce_transient: 1 }), setup: [{ op: "session", email: "member@example.com" }] });
add("ses-events", "delivery-event-ignored", snsEvent({ eventType: "Delivery", delivery: { recipients: ["member@example.com"] }, mail: sesMail("member@example.com") }),
  { body: summary({ other: 1 }) });
add("ses-events", "not-an-ses-record-ignored", snsEvent("{\"Type\":\"SubscriptionConfirmation\"}", "not json at all"),
  { body: summary({ records: 2, malformed: 2 }) });

rmSync(OUT, { recursive: true, force: true });
for (const [path, content] of files) {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(content, null, 2)}\n`);
}
console.log(`wrote ${files.length / 2} fixtures under events/`);
