// Hostile corpus (issue 8): several hundred malformed, oversized, mistyped, confused and
// forged requests across every route, generated from a table of attack families. Every
// answer: never 5xx; every 4xx a JSON:API error document whose meta.request_id is the
// X-Request-ID header (except the local router's own non-JSON:API 404 for paths and methods
// it does not route); the stated status/code/pointer; no body reflecting a submitted email,
// password or token. And nothing may change: the table is scanned before and after and must
// be identical except for RATE# counters. Bases carry REAL secrets (the member's refresh
// token, an unused magic link, the right password), so a check that lets a request through
// shows up as a changed table.
// Local quirks: cargo lambda turns a body into a String when the Content-Type is missing,
// text/* or application/json* (invalid UTF-8 there is the emulator's own 500), so raw bytes
// go as application/vnd.api+json (base64 in the event, as for binary on API Gateway). Methods
// the router does not route never reach a function; `/lambda-url/<function>/<path>` (cargo
// lambda's direct function URL) does, so the edge's 405 is tested through it.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createHmac, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import {
  API_URL, PREFIX, JSONAPI, call, doc, magic, mails, waitForMail, tokenFrom, uniqueEmail, signUp,
  mailerIdle, recordSecret, sleep, claimsOf, tableSnapshot as snapshot,
  KEY_PREFIX,
} from "./helpers.mjs";

const hex = randomBytes(4).toString("hex");
const PW = `Hostile-harbour-${hex}-42`; // member B's real password
const NEW_PW = `Never-set-lantern-${hex}-17`; // valid, and no request may ever set it
[PW, NEW_PW].forEach(recordSecret);
const fake = () => randomBytes(32).toString("base64url"); // 43 chars, shaped like a real token
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
const SHORT = "Zq7!xK2"; // 7 characters
const recorded = new Set();
/** Records a submitted value for the secrets-in-logs check (not "@example.com": redacted emails end with it). */
function secret(v) {
  if (typeof v === "string" && v.length >= 8 && v.length <= 1000 && !v.startsWith("@") && !/[\u0000-\u001f\u007f]/.test(v) && !recorded.has(v)) recorded.add(v) && recordSecret(v);
}

let A; // signed in by magic link, no password; also holds an unused magic link
let B; // signed in by magic link, password PW set (the forgotten-password path is open to it)

// ---- routes ----------------------------------------------------------------------------
const R = {
  register: { fn: "register", path: "/register", type: "register_requests", confuse: "magic_link_requests", base: () => ({ email: A.email, slug: "member-academy" }), attrs: ["email", "slug", "team_id", "redirect_url"], required: ["email"] },
  magic: { fn: "magic", path: "/magic", type: "magic_link_requests", confuse: "register_requests", base: () => ({ email: A.email, slug: "member-academy" }), attrs: ["email", "slug", "team_id", "redirect_url"], required: ["email"] },
  consume: { fn: "magic-consume", path: "/magic/consume", type: "magic_link_consumes", confuse: "refresh_requests", base: () => ({ token: A.magic }), attrs: ["token"], required: ["token"] },
  login: { fn: "login", path: "/login", type: "login_requests", confuse: "register_requests", base: () => ({ email: B.email, password: PW, slug: "member-academy" }), attrs: ["email", "password", "slug", "team_id"], required: ["email", "password"] },
  refresh: { fn: "refresh", path: "/refresh", type: "refresh_requests", confuse: "magic_link_consumes", optional: [401, "refresh_token_missing"], base: () => ({ refresh_token: A.refresh }), attrs: ["refresh_token"], required: [] },
  logout: { fn: "logout", path: "/logout", type: "refresh_requests", confuse: "login_requests", optional: [204, null], base: () => ({ refresh_token: A.refresh }), attrs: ["refresh_token"], required: [] },
  patchMe: { fn: "me-patch", method: "PATCH", path: "/me", type: "contacts", confuse: "contact", auth: () => A, base: () => ({ tos_version: "hostile-v1" }), attrs: ["tos_accepted_at", "tos_version", "email"], required: [] },
  setPw: { fn: "password-set", path: "/me/password", type: "password_sets", confuse: "password_changes", auth: () => A, base: () => ({ password: NEW_PW }), attrs: ["password"], required: ["password"] },
  changePw: { fn: "password-change", path: "/me/password/change", type: "password_changes", confuse: "password_sets", auth: () => B, base: () => ({ new_password: NEW_PW }), attrs: ["new_password", "current_password"], required: ["new_password"] },
};
const BODYLESS = {
  meGet: { fn: "me-get", method: "GET", path: "/me", auth: () => A },
  logoutEverywhere: { fn: "logout-everywhere", path: "/logout-everywhere", auth: () => A },
  meSessions: { fn: "me-sessions", method: "GET", path: "/me/sessions", auth: () => A },
  logoutOthers: { fn: "logout-others", path: "/logout-others", auth: () => A },
  endSession: { fn: "me-session-delete", method: "DELETE", path: "/me/sessions/0f0e0d0c-0b0a-4098-8765-43210fedcba9", auth: () => A },
  jwks: { fn: "jwks", method: "GET", path: "/.well-known/jwks.json" },
  discovery: { fn: "openid-configuration", method: "GET", path: "/.well-known/openid-configuration" },
  hosted: { fn: "hosted-page", method: "GET", full: "/m" },
};
for (const r of [...Object.values(R), ...Object.values(BODYLESS)]) {
  r.method ||= "POST";
  r.full ||= `${PREFIX}${r.path}`;
}
const url = (r) => `${API_URL}${r.full}`;
const direct = (r) => `${API_URL}/lambda-url/${r.fn}${r.full}`; // straight to the function
const authOf = (r) => (r.auth ? { Authorization: `Bearer ${r.auth().access}` } : {});
const docStr = (type, attrsJson) => `{"data":{"type":${JSON.stringify(type)},"attributes":${attrsJson}}}`;
const withAttrs = (base, extra) => Object.assign(Object.create(null), base, extra); // "__proto__" stays a plain key
const secretsOf = (o) => Object.entries(o || {}).filter(([k, v]) => /email|password|token/.test(k) && typeof v === "string").map(([, v]) => v);
const ptr = (name) => `/data/attributes/${name}`;
const err = (status, code, pointer) => ({ status, code, pointer });

// ---- the corpus ------------------------------------------------------------------------
const corpus = [];
function add(fam, name, req, expect) {
  corpus.push({ fam, name, method: "POST", headers: {}, secrets: [], reflect: [], ...req, expect });
}
/** A request to body route `r` (its auth, JSON:API content type unless `ct` says otherwise). */
function send(r, body, { ct = JSONAPI, headers = {}, secrets = [] } = {}) {
  return { method: r.method, url: url(r), headers: { ...authOf(r), ...headers, ...(ct ? { "Content-Type": ct } : {}) }, body, secrets };
}
const attrsReq = (r, attrs, opts = {}) => send(r, docStr(r.type, JSON.stringify(attrs)), { secrets: secretsOf(attrs), ...opts });

function buildCorpus() {
  const [h, p, s] = A.access.split(".");
  const hdr = JSON.parse(Buffer.from(h, "base64url"));
  const cl = claimsOf(A.access);
  const { privateKey } = generateKeyPairSync("ed25519");
  const edJwt = (header, claims) => { const input = `${b64(header)}.${b64(claims)}`; return `${input}.${sign(null, Buffer.from(input), privateKey).toString("base64url")}`; };
  const hsInput = `${b64({ ...hdr, alg: "HS256" })}.${p}`;
  const JWTS = {
    "JWT with alg none": `${b64({ ...hdr, alg: "none" })}.${p}.`,
    "JWT with a tampered payload (another member's sub)": `${h}.${b64({ ...cl, sub: B.sub })}.${s}`,
    "JWT with a tampered payload (exp + 1 day)": `${h}.${b64({ ...cl, exp: cl.exp + 86400 })}.${s}`,
    "JWT signed by another key for another issuer": edJwt(hdr, { ...cl, iss: "https://contact-auth.evil.example/api/v1/contact-auth" }),
    "JWT signed by another key, real kid and issuer": edJwt(hdr, cl),
    "JWT HS256 keyed with the public JWK": `${hsInput}.${createHmac("sha256", A.jwkX).update(hsInput).digest("base64url")}`,
    "JWT with a path-traversal kid": edJwt({ ...hdr, kid: "../../../../etc/passwd" }, cl),
    "JWT with a truncated signature": `${h}.${p}.${s.slice(0, -4)}`,
  };
  Object.values(JWTS).forEach(secret);
  const AUTHS = {
    "no Authorization": undefined, "Bearer alone": "Bearer", "Bearer + 5000 chars": `Bearer ${"a".repeat(5000)}`,
    "Basic credentials": "Basic dXNlcjpwYXNzd29yZA==", "the refresh token as Bearer": `Bearer ${A.refresh}`,
    "two Bearer tokens": `Bearer ${A.access}, Bearer ${B.access}`,
    ...Object.fromEntries(Object.entries(JWTS).map(([k, v]) => [k, `Bearer ${v}`])),
  };

  for (const [key, r] of Object.entries(R)) {
    const T = r.type;
    const base = r.base();
    const baseJson = JSON.stringify(base);
    const first = Object.keys(base)[0];
    const bs = secretsOf(base);
    const raw = (name, body, expect, opts = {}) => add(opts.fam || "encodings", `${key}: ${name}`, send(r, body, { secrets: bs, ...opts }), expect);
    const noToken = r.optional ? err(...r.optional) : err(422, "validation_error", "/data/attributes");

    // encodings
    raw("invalid UTF-8 bytes", Buffer.concat([Buffer.from(`{"data":{"type":"${T}`), Buffer.from([0xff, 0xfe, 0xc0, 0xaf, 0xed, 0xa0, 0x80]), Buffer.from(`","attributes":${baseJson}}}`)]), err(400, "malformed_json"));
    raw("UTF-16LE with BOM", Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(docStr(T, baseJson), "utf16le")]), err(400, "malformed_json"));
    raw("UTF-8 BOM (wrong type inside)", Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(docStr("hostile_bom", baseJson))]), err([400, 409], ["malformed_json", "type_mismatch"]));
    raw("nesting 5000 deep", `{"data":{"type":"${T}","attributes":{"${first}":${"[".repeat(5000)}${"]".repeat(5000)}}}}`, err(400, "malformed_json"));
    raw("nesting 10000 deep (over 16 KiB)", `{"data":{"type":"${T}","attributes":{"${first}":${"[".repeat(10000)}${"]".repeat(10000)}}}}`, err(413, "payload_too_large"));
    raw("number 1e999999", `{"data":{"type":"${T}","attributes":{"${first}":1e999999}}}`, err([400, 422], ["malformed_json", "validation_error"]));
    raw("30-digit integer", `{"data":{"type":"${T}","attributes":{"${first}":123456789012345678901234567890}}}`, err(422, "validation_error", ptr(first)));
    raw("NaN literal", `{"data":{"type":"${T}","attributes":{"${first}":NaN}}}`, err(400, "malformed_json"));
    raw("-Infinity literal", `{"data":{"type":"${T}","attributes":{"${first}":-Infinity}}}`, err(400, "malformed_json"));
    raw("\\u0000 in data.type", `{"data":{"type":"${T}\\u0000","attributes":${baseJson}}}`, err(409, "type_mismatch", "/data/type"));
    raw("lone surrogate \\ud800 in data.type", `{"data":{"type":"\\ud800${T}","attributes":${baseJson}}}`, err([400, 409], ["malformed_json", "type_mismatch"]));
    raw("trailing garbage", `${docStr(T, baseJson)}}`, err(400, "malformed_json"));
    raw("truncated document", docStr(T, baseJson).slice(0, -3), err(400, "malformed_json"));

    // sizes (the limit is 16 KiB: 16384 bytes pass the size check, 16385 do not)
    const padded = (n) => { const d = docStr(T, JSON.stringify({ ...base, pad: "" })); return d.replace('"pad":""', `"pad":"${"x".repeat(n - Buffer.byteLength(d))}"`); };
    raw("exactly 16 KiB (unknown pad attribute)", padded(16384), err(422, "unknown_attribute", ptr("pad")), { fam: "sizes" });
    raw("16 KiB + 1", padded(16385), err(413, "payload_too_large"), { fam: "sizes" });
    raw("1 MB", padded(1 << 20), err(413, "payload_too_large"), { fam: "sizes" });
    raw("empty body", "", r.optional ? err(...r.optional) : err(422, "validation_error", "/data"), { fam: "sizes" });
    raw("whitespace-only body", " \r\n\t ", r.optional ? err(...r.optional) : err(422, "validation_error", "/data"), { fam: "sizes" });

    // types: the envelope
    const env = (name, body, expect) => raw(name, body, expect, { fam: "types" });
    for (const [name, body] of [["body null", "null"], ["body []", "[]"], ["body a string", '"data"'], ["body a number", "42"], ["data null", '{"data":null}'], ["data a string", '{"data":"x"}'], ["data an array", `{"data":[${JSON.stringify({ type: T, attributes: base })}]}`]]) env(name, body, err(422, "validation_error", "/data"));
    for (const [name, t] of [["type missing", undefined], ["type a number", 7], ["type an array", [T]], ["type null", null]]) env(name, JSON.stringify({ data: { type: t, attributes: base } }), err(422, "validation_error", "/data/type"));
    for (const [name, a] of [["attributes an array", [base]], ["attributes a string", baseJson], ["attributes a number", 1]]) env(name, docStr(T, JSON.stringify(a)), err(422, "validation_error", "/data/attributes"));
    env("attributes null", docStr(T, "null"), r.optional ? err([422, r.optional[0]], ["validation_error", r.optional[1]]) : err(422, "validation_error", "/data/attributes"));
    env("attributes missing", `{"data":{"type":"${T}"}}`, noToken);
    // types: each attribute as number, object, array, bool (and null where it is required)
    for (const name of r.attrs) {
      const pointers = name === "team_id" ? [ptr(name), "/data/attributes"] : ptr(name);
      for (const [tn, v] of [["a number", 12345678], ["an object", { $ne: null }], ["an array", ["x@example.com"]], ["a bool", true], ...(r.required.includes(name) ? [["null", null]] : [])]) {
        add("types", `${key}: ${name} as ${tn}`, attrsReq(r, { ...base, [name]: v }), err(422, "validation_error", pointers));
      }
    }
    if (r.optional) add("types", `${key}: refresh_token null`, attrsReq(r, { refresh_token: null }), err(...r.optional));

    // duplicate keys: the parser may refuse them (400) or keep one; both values are harmless
    raw('duplicate data.type ("x", "y")', `{"data":{"type":"x","type":"y","attributes":${baseJson}}}`, err([400, 409], ["malformed_json", "type_mismatch"]), { fam: "duplicates" });
    const dup = {
      register: () => ["email", uniqueEmail("hostile-dup"), uniqueEmail("hostile-dup"), { slug: "hostile-nohub" }, [202, 400, 422]],
      magic: () => ["email", uniqueEmail("hostile-dup"), uniqueEmail("hostile-dup"), { slug: "hostile-nohub" }, [202, 400, 422]],
      consume: () => ["token", fake(), fake(), {}, [400, 401]],
      login: () => ["email", uniqueEmail("hostile-dup"), uniqueEmail("hostile-dup"), { password: `Wrong-${hex}-pass`, slug: "hostile-nohub" }, [400, 401, 422]],
      refresh: () => ["refresh_token", fake(), fake(), {}, [400, 401]],
      logout: () => ["refresh_token", fake(), fake(), {}, [204, 400]],
      patchMe: () => ["tos_version", "", "v".repeat(65), {}, [400, 422]],
      setPw: () => ["password", SHORT, A.email, {}, [400, 422]],
      changePw: () => ["new_password", SHORT, B.email, {}, [400, 422]],
    }[key]();
    const rest = JSON.stringify(dup[3]).slice(1, -1);
    raw(`duplicate "${dup[0]}"`, `{"data":{"type":"${T}","attributes":{"${dup[0]}":${JSON.stringify(dup[1])},"${dup[0]}":${JSON.stringify(dup[2])}${rest ? `,${rest}` : ""}}}}`, err(dup[4]), { fam: "duplicates", secrets: [dup[1], dup[2], ...secretsOf(dup[3])] });

    // wrong data.type
    for (const t of [r.confuse, T.toUpperCase(), `${T} `, ""]) add("wrong type", `${key}: data.type ${JSON.stringify(t)}`, send(r, docStr(t, baseJson), { secrets: bs }), err(409, "type_mismatch", "/data/type"));

    // unknown attributes
    for (const [name, v] of [["redirectUrl", "https://evil.example/"], ["__proto__", { isAdmin: true }], [first.toUpperCase(), "x"], ["role", "admin"]]) {
      add("unknown attribute", `${key}: unknown attribute ${name}`, attrsReq(r, withAttrs(base, { [name]: v })), err(422, "unknown_attribute", ptr(name)));
    }

    // content types (the body is the route's valid base document)
    const doc0 = docStr(T, baseJson);
    const multipart = Object.entries(base).map(([k, v]) => `--hostile\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`).join("") + "--hostile--\r\n";
    for (const [name, ct, body] of [
      ["text/plain", "text/plain", doc0], ["form-encoded", "application/x-www-form-urlencoded", new URLSearchParams(base).toString()],
      ["multipart", "multipart/form-data; boundary=hostile", multipart], ["missing Content-Type", null, Buffer.from(doc0)],
      ["JSON:API with charset=utf-8", "application/vnd.api+json; charset=utf-8", doc0], ["application/xml", "application/xml", `<data type="${T}"/>`],
    ]) add("content types", `${key}: ${name}`, send(r, body, { ct, secrets: bs }), err(415, "unsupported_media_type"));
  }

  // methods: the local router does not route them (its own 404); the function's edge answers 405
  for (const [key, r] of Object.entries({ ...R, ...BODYLESS })) {
    for (const m of { POST: ["PUT", "DELETE", "PATCH"], DELETE: ["POST", "PUT", "PATCH"] }[r.method] || ["POST", "PUT", "DELETE"]) {
      const body = r.type ? docStr(r.type, JSON.stringify(r.base())) : undefined;
      const req = { method: m, headers: { ...authOf(r), ...(body ? { "Content-Type": JSONAPI } : {}) }, body, secrets: r.type ? secretsOf(r.base()) : [] };
      add("methods", `${key}: ${m} through the router`, { ...req, url: url(r) }, { status: [404, 405], code: ["method_not_allowed", "not_found"], router: true, allow: r.method });
      add("methods", `${key}: ${m} straight to the function`, { ...req, url: direct(r) }, { ...err(405, "method_not_allowed"), allow: r.method });
    }
  }

  // headers: every broken or forged Authorization on every authenticated route
  const authRoutes = { meGet: BODYLESS.meGet, logoutEverywhere: BODYLESS.logoutEverywhere, meSessions: BODYLESS.meSessions, logoutOthers: BODYLESS.logoutOthers, endSession: BODYLESS.endSession, patchMe: R.patchMe, setPw: R.setPw, changePw: R.changePw };
  for (const [key, r] of Object.entries(authRoutes)) {
    for (const [name, value] of Object.entries(AUTHS)) {
      const body = r.type ? docStr(r.type, JSON.stringify(r.base())) : undefined;
      const headers = { ...(value === undefined ? {} : { Authorization: value }), ...(body ? { "Content-Type": JSONAPI } : {}) };
      add("authorization", `${key}: ${name}`, { method: r.method, url: url(r), headers, body, secrets: r.type ? secretsOf(r.base()) : [] }, err(401, "unauthorized"));
    }
  }

  // cookies: refresh answers 401, logout is 204 and revokes nothing
  const others = Array.from({ length: 60 }, (_, i) => `c${i}=${"v".repeat(20)}`).join("; ");
  for (const [name, cookie, code] of [
    ["two refresh cookies (the real one and another)", `contact_refresh=${A.refresh}; contact_refresh=${fake()}`, "refresh_token_invalid"],
    ["the real refresh cookie twice", `contact_refresh=${A.refresh}; contact_refresh=${A.refresh}`, "refresh_token_invalid"],
    ["an empty value", "contact_refresh=", "refresh_token_missing"],
    ["a 4 KB value", `contact_refresh=${"k".repeat(4096)}`, "refresh_token_invalid"],
    ["garbage", "contact_refresh=%00%ff<script>;;==", ["refresh_token_invalid", "refresh_token_missing"]],
    ["an unknown 43-char token", `contact_refresh=${fake()}`, "refresh_token_invalid"],
    ["a quoted value", `contact_refresh="${fake()}"`, "refresh_token_invalid"],
    ["the real token under a differently cased name", `Contact_Refresh=${A.refresh}`, "refresh_token_missing"],
    ["60 other cookies around an unknown token", `${others}; contact_refresh=${fake()}; z=1`, "refresh_token_invalid"],
    ["a name without a value", "contact_refresh", "refresh_token_missing"],
  ]) {
    const secrets = [...cookie.matchAll(/contact_refresh="?([^;"]*)/gi)].map((m) => m[1]);
    add("cookies", `refresh: ${name}`, { url: url(R.refresh), headers: { Cookie: cookie }, secrets }, err(401, code));
    add("cookies", `logout: ${name}`, { url: url(R.logout), headers: { Cookie: cookie }, secrets }, { status: 204, clears: true });
  }

  // tokens: magic tokens and refresh tokens that are not what they claim to be
  const f = fake();
  for (const [name, t] of [
    ["42 chars", f.slice(0, 42)], ["44 chars", `${f}A`], ["not base64url (+ / =)", `${f.slice(0, 40)}+/=`], ["43 unknown valid-looking chars", fake()],
    ["an unknown token padded with spaces", `  ${fake()}  `], ["43 full-width letters", "Ａ".repeat(43)], ["5000 chars", "t".repeat(5000)],
    ["the member's refresh token", A.refresh], ["the member's access token", A.access], ["an empty string", ""],
    ["quote injection", `' OR '1'='1' -- ${hex}`], ["a table key", `MAGIC#${fake()}`],
  ]) {
    add("tokens", `consume: ${name}`, attrsReq(R.consume, { token: t }), t === "" ? err([401, 422], ["magic_link_invalid", "validation_error"]) : err(401, "magic_link_invalid"));
  }
  for (const [name, t] of [["42 chars", f.slice(0, 42)], ["not base64url", `${f.slice(0, 41)}+/`], ["43 unknown chars", fake()], ["the access token", A.access], ["the unused magic token", A.magic], ["5000 chars", "r".repeat(5000)]]) {
    add("tokens", `refresh: body ${name}`, attrsReq(R.refresh, { refresh_token: t }), err(401, "refresh_token_invalid"));
    add("tokens", `logout: body ${name}`, attrsReq(R.logout, { refresh_token: t }), { status: 204, clears: true });
  }

  // emails: what SES cannot deliver, what is not an address, header injection
  const long255 = `${"a".repeat(64)}@${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(62)}`;
  const EMAILS = [
    "jörg@example.com", "<x@example.com>", '"a b"@example.com', "a@b", long255, "ctl\u0001char@example.com", "nul\u0000@example.com",
    "del\u007f@example.com", "victim@example.com\r\nBcc: spy@evil.example", "a@b@example.com", "@example.com", "   ",
    "ｍember@example.com", "rtl\u202e@example.com", "a..b@example.com", "x@exa mple.com",
  ];
  for (const key of ["register", "magic", "login", "patchMe"]) {
    for (const e of EMAILS) add("emails", `${key}: email ${JSON.stringify(e).slice(0, 40)}`, attrsReq(R[key], { ...R[key].base(), email: e }), err(422, "validation_error", ptr("email")));
  }

  // slugs and team ids (register, magic, login)
  for (const key of ["register", "magic", "login"]) {
    const r = R[key];
    const { slug: _slug, ...noSlug } = r.base();
    for (const v of ["my hub", "hüb", "a".repeat(65), "-lead", "trail-", "a_b", "../member-academy", "", "member-academy\u0000", "MEMBER ACADEMY"]) add("slugs", `${key}: slug ${JSON.stringify(v).slice(0, 30)}`, attrsReq(r, { ...r.base(), slug: v }), err(422, "validation_error", ptr("slug")));
    for (const v of ["team abc", "tëam", "t".repeat(65), "", "team/../x", "team_abc123#PROFILE"]) add("slugs", `${key}: team_id ${JSON.stringify(v).slice(0, 30)}`, attrsReq(r, { ...noSlug, team_id: v }), err(422, "validation_error", ptr("team_id")));
    add("slugs", `${key}: slug and team_id`, attrsReq(r, { ...r.base(), team_id: "team_abc123" }), err(422, "validation_error", "/data/attributes"));
    add("slugs", `${key}: neither slug nor team_id`, attrsReq(r, noSlug), err(422, "validation_error", "/data/attributes"));
  }

  // redirect_url (register, magic; member-academy allows http://localhost:5173)
  for (const key of ["register", "magic"]) {
    const r = R[key];
    for (const [name, u] of [
      ["javascript:", "javascript:alert(document.cookie)"], ["data:", "data:text/html,<script>alert(1)</script>"], ["plain http", "http://evil.example/welcome"],
      ["user info", "https://user:pw@evil.example/"], ["user info on the allowed origin", "http://user@localhost:5173/"],
      ["a #fragment", "http://localhost:5173/welcome#x"], ["an empty #", "http://localhost:5173/welcome#"], ["relative", "/welcome"],
      ["protocol-relative", "//evil.example/welcome"], ["2049 chars", `http://localhost:5173/${"a".repeat(2049 - 22)}`], ["localhost as a subdomain", "http://localhost.evil.example/"],
    ]) add("redirects", `${key}: redirect_url ${name}`, attrsReq(r, { ...r.base(), redirect_url: u }), err(422, "validation_error", ptr("redirect_url")));
    add("redirects", `${key}: redirect_url off the allow list`, attrsReq(r, { ...r.base(), redirect_url: "https://evil.example/welcome" }), err(422, "redirect_url_not_allowed", ptr("redirect_url")));
    add("redirects", `${key}: redirect_url with team_id`, attrsReq(r, { email: A.email, team_id: "team_abc123", redirect_url: "http://localhost:5173/welcome" }), err(422, "redirect_url_requires_slug", ptr("redirect_url")));
  }

  // PATCH /me: terms of service out of range, and valid parts next to an invalid one
  for (const [name, v] of [
    ["tos_accepted_at", "0000-01-01T00:00:00+00:01"], ["tos_accepted_at", "10000-01-01T00:00:00Z"], ["tos_accepted_at", "1969-12-31T23:59:59Z"],
    ["tos_accepted_at", "not a date"], ["tos_accepted_at", 1700000000], ["tos_accepted_at", "2026-02-30T00:00:00Z"], ["tos_accepted_at", "2026-01-01"],
    ["tos_version", "v".repeat(65)], ["tos_version", ""],
  ]) add("tos", `patchMe: ${name} ${JSON.stringify(v).slice(0, 30)}`, attrsReq(R.patchMe, { ...R.patchMe.base(), [name]: v }), err(422, "validation_error", ptr(name)));
  add("tos", "patchMe: valid terms next to an invalid email", attrsReq(R.patchMe, { tos_accepted_at: "2024-06-01T00:00:00Z", tos_version: "2024-06", email: "jörg@example.com" }), err(422, "validation_error", ptr("email")));

  // passwords (the policy's rules: password.rs `policy`; its wiring: sessions.test.mjs)
  add("passwords", "changePw: wrong current_password", attrsReq(R.changePw, { current_password: `Wrong-current-${hex}`, new_password: NEW_PW }), err(422, "current_password_incorrect", ptr("current_password")));
  for (const key of ["register", "magic"]) add("passwords", `${key}: a password at signup`, attrsReq(R[key], { ...R[key].base(), password: NEW_PW }), err(422, "password_not_allowed", ptr("password")));
  add("unknown attribute", "register: a name with '/' (RFC 6901 pointer)", attrsReq(R.register, { ...R.register.base(), "x/y": 1 }), err(422, "unknown_attribute", "/data/attributes/x~1y"));

  // path tricks: unknown to the router (its 404, or any 4xx; a read of /me may even match) — never 5xx
  const api = (p) => `${API_URL}${PREFIX}${p}`;
  const meAuth = { Authorization: `Bearer ${A.access}` };
  for (const [m, u, headers] of [
    ["GET", api("/me/"), meAuth], ["GET", api("//me"), meAuth], ["GET", api("/me%2f.."), meAuth], ["GET", api("/ME"), meAuth],
    ["POST", api("/me%2F..%2Flogin"), {}], ["POST", api("/register/"), {}], ["POST", api("/register;x=1"), {}], ["GET", api("/.well-known/..%2fme"), meAuth],
    ["GET", api(`/${"a".repeat(6000)}`), {}], ["GET", api("/%00"), {}], ["GET", `${API_URL}/api/v1/contact-auth`, {}], ["GET", `${API_URL}/`, {}],
  ]) add("paths", `${m} ${u.slice(API_URL.length, API_URL.length + 50)}`, { method: m, url: u, headers }, { status: headers === meAuth ? ["4xx", 200] : "4xx", router: true });
  const xss = "<script>alert(1)</script>";
  add("paths", "GET /me with a query string", { method: "GET", url: api("/me?x=1&x=2&__proto__=1"), headers: meAuth }, { status: 200 });
  add("paths", "GET /me with the access token in the query", { method: "GET", url: api(`/me?access_token=${A.access}`), secrets: [A.access] }, err(401, "unauthorized"));
  add("paths", "POST /refresh with a token in the query", { url: api(`/refresh?refresh_token=${fake()}`) }, err(401, "refresh_token_missing"));
  add("paths", "GET jwks with a script in the query", { method: "GET", url: api(`/.well-known/jwks.json?callback=${xss}`), headers: { Authorization: "Bearer x", Cookie: `contact_refresh=${"k".repeat(4096)}` }, reflect: [xss] }, { status: 200 });
  for (const q of [`hub=${xss}`, 'hub="><img src=x onerror=alert(1)>', `token=${fake()}`]) {
    add("paths", `GET /m?${q.slice(0, 20)}`, { method: "GET", url: `${API_URL}/m?${q}`, reflect: [xss, "onerror=alert(1)", q.slice(q.indexOf("=") + 1)] }, { status: 200 });
  }

  // CORS and request ids: foreign origins get no CORS headers; a client's X-Request-ID is not echoed
  const cors = (name, r, headers, expect) => add("cors", name, { method: "OPTIONS", url: url(r), headers }, { ...expect, noHeader: "access-control-allow-origin" });
  cors("OPTIONS register from a foreign origin", R.register, { Origin: "https://evil.example", "Access-Control-Request-Method": "POST" }, { status: 204 });
  cors("OPTIONS login from Origin null", R.login, { Origin: "null", "Access-Control-Request-Method": "POST" }, { status: 204 });
  cors("OPTIONS /me from a look-alike origin", R.patchMe, { Origin: "http://localhost:5173.evil.example", "Access-Control-Request-Method": "PATCH" }, { status: 204 });
  add("cors", "POST register from a foreign origin", send(R.register, docStr("x", JSON.stringify(R.register.base())), { headers: { Origin: "https://evil.example" }, secrets: [A.email] }), { ...err(409, "type_mismatch"), noHeader: "access-control-allow-origin" });
  add("cors", "register with a client X-Request-ID", send(R.register, docStr("x", "{}"), { headers: { "X-Request-ID": "client-chosen-request-id" } }), { ...err(409, "type_mismatch"), notRequestId: "client-chosen-request-id" });
  add("cors", "GET /m with a client X-Request-ID", { method: "GET", url: `${API_URL}/m`, headers: { "X-Request-ID": "client-chosen-request-id" } }, { status: 200, notRequestId: "client-chosen-request-id" });
}

// ---- running and checking ----------------------------------------------------------------
async function run(e) {
  const res = await fetch(e.url, { method: e.method, headers: e.headers, body: e.body, redirect: "manual" });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, text, json };
}

const inList = (v, want) => [].concat(want).some((w) => w === v || (w === "4xx" && v >= 400 && v < 500));

function problems(e, r) {
  const x = e.expect;
  const p = [];
  const ct = r.headers.get("content-type") || "";
  if (r.status >= 500) p.push("SERVER ERROR");
  if (!inList(r.status, x.status)) p.push(`status ${r.status}, want ${[].concat(x.status).join("|")}`);
  const rid = r.headers.get("x-request-id");
  if (!(x.router && ct !== JSONAPI)) { // everything but the local router's own (non-JSON:API) 404
    if (!rid) p.push("no X-Request-ID");
    if (r.status >= 400 && r.status < 500) {
      const e0 = r.json && Array.isArray(r.json.errors) ? r.json.errors[0] : null;
      if (ct !== JSONAPI) p.push(`Content-Type ${JSON.stringify(ct)}`);
      if (!e0) p.push("no errors[0]");
      else {
        if (e0.status !== String(r.status)) p.push(`errors[0].status ${JSON.stringify(e0.status)}`);
        for (const k of ["code", "title", "detail"]) if (typeof e0[k] !== "string" || !e0[k]) p.push(`no errors[0].${k}`);
        if (!e0.meta || !e0.meta.request_id || e0.meta.request_id !== rid) p.push("meta.request_id is not X-Request-ID");
        if (/dynamodb|panic/i.test(r.text)) p.push("the answer names an internal (dynamodb, panic)");
        if (x.code && !inList(e0.code, x.code)) p.push(`code ${e0.code}, want ${[].concat(x.code).join("|")}`);
        if (x.pointer && !inList(e0.source && e0.source.pointer, x.pointer)) p.push(`pointer ${e0.source && e0.source.pointer}, want ${x.pointer}`);
        if (e0.code === "unauthorized" && !/^Bearer\b/.test(r.headers.get("www-authenticate") || "")) p.push("no WWW-Authenticate: Bearer");
        if (r.status === 405 && !(r.headers.get("allow") || "").split(/,\s*/).includes(x.allow)) p.push(`Allow ${JSON.stringify(r.headers.get("allow"))}, want ${x.allow}`);
      }
    }
  }
  if (x.noHeader && r.headers.get(x.noHeader) !== null) p.push(`${x.noHeader}: ${r.headers.get(x.noHeader)}`);
  if (x.notRequestId && rid === x.notRequestId) p.push("echoed the client's X-Request-ID");
  if (x.clears && !/contact_refresh=;[^,]*Max-Age=0/i.test(r.headers.get("set-cookie") || "")) p.push("refresh cookie not cleared");
  for (const s of [...e.secrets, ...e.reflect]) if (r.text.includes(s) || r.text.includes(JSON.stringify(s).slice(1, -1))) p.push(`body reflects a submitted value (${s.slice(0, 6)}…)`);
  return p;
}

async function member(tag) {
  const email = uniqueEmail(tag);
  const pair = await signUp(email);
  return { email, access: pair.access_token, refresh: pair.refresh_token, sub: claimsOf(pair.access_token).sub };
}

test("hostile corpus: no 5xx, JSON:API errors with the stated codes, no reflected secrets, nothing changed", { timeout: 240000 }, async () => {
  A = await member("hostile");
  B = await member("hostile-pw");
  const set = await call("POST", "/me/password", { headers: { Authorization: `Bearer ${B.access}` }, body: doc("password_sets", { password: PW }) });
  assert.equal(set.status, 200, set.text);
  await sleep(2100); // the test stack's email cooldown since A's registration
  const seen = (await mails(A.email)).length;
  assert.equal((await magic({ email: A.email, slug: "member-academy" })).status, 202);
  A.magic = tokenFrom(await waitForMail(A.email, seen)); // a real, unused sign-in link
  const published = (await call("GET", "/.well-known/jwks.json")).json.keys[0];
  A.jwkX = published.n ?? published.x; // the public key's bytes, as an HMAC key
  buildCorpus();

  await mailerIdle();
  const before = await snapshot();
  const failures = [];
  let serverErrors = 0;
  for (const e of corpus) {
    const bearer = (e.headers.Authorization || "").replace(/^(Bearer|Basic) ?/, "");
    e.secrets = [...e.secrets, bearer].filter((v) => typeof v === "string" && v.length >= 8);
    e.secrets.forEach(secret);
    let r;
    try { r = await run(e); } catch (ex) { failures.push(`${e.fam} / ${e.name}: request failed: ${ex.message}`); continue; }
    if (r.status >= 500) serverErrors++;
    const p = problems(e, r);
    if (p.length) failures.push(`${e.fam} / ${e.name}: ${p.join("; ")} — ${r.status} ${r.text.slice(0, 160)}`);
  }
  await mailerIdle();
  const after = await snapshot();

  const byFamily = {};
  for (const e of corpus) byFamily[e.fam] = (byFamily[e.fam] || 0) + 1;
  console.log(`families: ${Object.entries(byFamily).map(([k, v]) => `${k} ${v}`).join(", ")}`);
  console.log(`hostile corpus: ${corpus.length} requests, ${serverErrors} server errors`);
  const changed = [];
  const rate = [];
  for (const k of new Set([...before.keys(), ...after.keys()])) {
    if (before.get(k) === after.get(k)) continue;
    const how = !before.has(k) ? "added" : !after.has(k) ? "deleted" : "changed";
    if (k.startsWith(KEY_PREFIX.rate)) rate.push(k);
    else changed.push(`${how}: ${k}${how === "changed" ? `\n    before ${before.get(k).slice(0, 300)}\n    after  ${after.get(k).slice(0, 300)}` : ""}`);
  }
  const report = [
    failures.length && `${failures.length} of ${corpus.length} hostile requests answered wrongly:\n${failures.slice(0, 60).join("\n")}`,
    changed.length && `the hostile corpus changed the table:\n${changed.join("\n")}\nRATE# counters that changed (allowed): ${rate.join(", ") || "none"}`,
  ].filter(Boolean).join("\n\n");
  assert.ok(corpus.length >= 200, `only ${corpus.length} requests`);
  assert.equal(serverErrors, 0, report);
  assert.equal(report, "", report);
});
