// The v1.1 sign-in code, same-device binding (PKCE) and `meta.reason`, end to end over
// HTTP (CONTRACT.md §3 and §13). Every register and sign-in mail carries, besides the link,
// a 6-digit code shown as `123 456`; `POST /magic/consume` takes `{email, code, slug |
// team_id}` instead of `token`. Code and link live and die together; 5 wrong codes kill a
// link's code (never its link); 10 wrong codes an hour per email make code sign-in 429.
// A link requested with a `code_challenge` is consumed only with the matching
// `code_verifier`, by token or by code.
//
// The test stack (tools/test.mjs) runs with a 2 s per-address send cooldown and a raised
// per-IP limit; each test uses fresh addresses, so none depends on another. Expiry needs a
// clock and is covered by the fixture replay (events/magic-consume/expired).

import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import {
  API_URL, call, doc, register, magic, consume, consumeCode, consumeWith, pkcePair, codeFrom,
  tokenFrom, waitForMail, mails, mailerIdle, uniqueEmail, signUp, errorOf, claimsOf, sleep,
  recordSecret, remember, me, patchMe, setPassword, changePassword, login,
  assertErrorDocument, tableSnapshot, tableChanges, itemKey, KEY_PREFIX,
  send, mailWithSubject,
} from "./helpers.mjs";

const TIMEOUT = 60000;
const SLUG = "member-academy";
const TEAM = "team_abc123";
const PASSWORD = "saffron-trellis-quarry-61";
recordSecret(PASSWORD);

/** Wrong codes per link before its code is dead, and per email and hour before 429. */
const LINK_ATTEMPTS = 5;
const EMAIL_ATTEMPTS = 10;

/**
 * Requests a link (register or magic) and waits for its mail and for the mailer to be idle:
 * the mailer writes the newest-link pointer, which a code is looked up by, only after SES
 * took the mail, and retires the job after that.
 */
async function requestLink(fn, attributes) {
  const before = (await mails(attributes.email)).length;
  const r = await send(fn, attributes);
  assert.equal(r.status, 202, r.text);
  const mail = await waitForMail(attributes.email, before);
  await mailerIdle();
  return { mail, token: tokenFrom(mail), code: codeFrom(mail) };
}

/** A 6-digit code that is not `code` (the i-th after it, i ≥ 1). */
const wrongCode = (code, i = 1) => String((Number(code) + i) % 1000000).padStart(6, "0");

/** Asserts a 401 magic_link_invalid error document with `meta.reason` = `reason`. */
function assertRefused(r, reason, what = "") {
  assertErrorDocument(r, 401, "magic_link_invalid");
  assert.equal(errorOf(r).meta.reason, reason, `${what} meta.reason: ${r.text}`);
}

/** Asserts a 429 rate_limited document with a sane Retry-After. */
function assertRateLimited(r, maxSeconds = 3600) {
  assertErrorDocument(r, 429, "rate_limited");
  const retry = Number(r.headers.get("retry-after"));
  assert.ok(Number.isInteger(retry) && retry >= 1 && retry <= maxSeconds, `Retry-After ${r.headers.get("retry-after")}`);
}

/** Asserts a token pair answer; returns the access token's claims. */
function assertPair(r, amr) {
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.token_type, "Bearer");
  assert.equal(r.json.expires_in, 900);
  assert.match(r.json.refresh_token, /^[A-Za-z0-9_-]{43}$/);
  assert.ok("redirect_url" in r.json, "redirect_url is always present");
  assert.equal(r.headers.get("cache-control"), "no-store");
  assert.match(r.headers.get("set-cookie") || "", /contact_refresh=[\w-]{43};/);
  const claims = claimsOf(r.json.access_token);
  assert.deepEqual(claims.amr, amr);
  return claims;
}

/** "pk | sk" of an item key, as tableSnapshot()/tableChanges() name items. */
const keyString = (k) => `${k.pk.S} | ${k.sk.S}`;
const isRate = (k) => k.startsWith(KEY_PREFIX.rate);

// ---------------------------------------------------------------------------------------
// The code in the mail, and signing in by it
// ---------------------------------------------------------------------------------------

test("register mail carries the link (with hub) and a `123 456` code; the code signs a new email up with amr otp", { timeout: TIMEOUT }, async () => {
  const email = uniqueEmail("code-new");
  const { mail, token, code } = await requestLink(register, { email, slug: SLUG });
  assert.equal(mail.subject, "Confirm your email for Member Academy");
  assert.ok(mail.body.text.includes(`${API_URL}/m?hub=${SLUG}&lang=en#token=${token}`), mail.body.text);
  assert.ok(mail.body.text.includes(`${code.slice(0, 3)} ${code.slice(3)}`), "the code is shown as `123 456`");
  assert.match(code, /^\d{6}$/);

  const c = await consumeCode({ email, code, slug: SLUG });
  const claims = assertPair(c, ["otp"]);
  assert.equal(c.json.redirect_url, null);
  assert.equal(claims.tid, TEAM);
  assert.equal(claims.hid, "hub_member_academy");
  // (The `team:<id>` audience of CONTRACT §12 v1.1 is issue 11's; its tests assert it.)

  // The contact exists now, verified, with the membership.
  const profile = await me(c.json.access_token);
  assert.equal(profile.status, 200, profile.text);
  assert.equal(profile.json.data.id, claims.sub);
  assert.equal(profile.json.data.attributes.email, email);
  assert.ok(profile.json.data.attributes.email_verified_at, "email_verified_at is set");
  assert.deepEqual(profile.json.data.attributes.team_memberships.map((m) => m.team_id), [TEAM]);

  // Code and link die together: the link is now `used`, the code `invalid`.
  assertRefused(await consume(token), "used", "the link after its code was consumed:");
  assertRefused(await consumeCode({ email, code, slug: SLUG }), "invalid", "the code again:");
});

test("POST /magic's sign-in mail carries a code too; an existing member signs in by it as the same contact", { timeout: TIMEOUT }, async () => {
  const email = uniqueEmail("code-member");
  const first = await signUp(email);
  const { mail, code } = await requestLink(magic, { email, slug: SLUG });
  assert.equal(mail.subject, "Sign in to Member Academy");
  const c = await consumeCode({ email, code, slug: SLUG });
  const claims = assertPair(c, ["otp"]);
  assert.equal(claims.sub, claimsOf(first.access_token).sub, "the same contact");
  assert.equal(claims.tid, TEAM);
  assert.equal((await me(c.json.access_token)).status, 200);
});

test("the code may be typed with a space or a hyphen", { timeout: TIMEOUT }, async () => {
  const spaced = uniqueEmail("code-space");
  const hyphened = uniqueEmail("code-hyphen");
  const [a, b] = await Promise.all([
    requestLink(register, { email: spaced, slug: SLUG }),
    requestLink(register, { email: hyphened, slug: SLUG }),
  ]);
  assertPair(await consumeCode({ email: spaced, code: `${a.code.slice(0, 3)} ${a.code.slice(3)}`, slug: SLUG }), ["otp"]);
  assertPair(await consumeCode({ email: hyphened, code: `${b.code.slice(0, 3)}-${b.code.slice(3)}`, slug: SLUG }), ["otp"]);
  // The typed form is the same code: both links are used.
  assertRefused(await consume(a.token), "used");
  assertRefused(await consume(b.token), "used");
});

test("the code belongs to the team: team_id consumes a slug-requested link; another team's hub does not; redirect_url comes back", { timeout: TIMEOUT }, async () => {
  const email = uniqueEmail("code-team");
  const redirect = "http://localhost:5173/welcome?from=code";
  const { mail, code } = await requestLink(register, { email, slug: "my-hub", redirect_url: redirect });
  assert.ok(mail.body.text.includes("http://localhost:5173/welcome?from=code#token="), mail.body.text);

  // The same email and code aimed at another team's hub: no link there.
  assertRefused(await consumeCode({ email, code, slug: "other-hub" }), "invalid", "another team:");
  const c = await consumeCode({ email, code, team_id: TEAM });
  const claims = assertPair(c, ["otp"]);
  assert.equal(c.json.redirect_url, redirect, "the link's bound redirect_url");
  assert.equal(claims.tid, TEAM);
});

test("after the link is consumed by token, its code is refused with reason invalid", { timeout: TIMEOUT }, async () => {
  const email = uniqueEmail("code-after-link");
  const { token, code } = await requestLink(register, { email, slug: SLUG });
  assertPair(await consume(token), ["magic_link"]);
  assertRefused(await consumeCode({ email, code, slug: SLUG }), "invalid");
  assertRefused(await consume(token), "used");
});

test("a code sign-in counts as a fresh sign-in: set a password, then change it without current_password (forgotten-password rule)", { timeout: TIMEOUT }, async () => {
  const email = uniqueEmail("code-otp-pw");
  const { code } = await requestLink(register, { email, slug: SLUG });
  const c = await consumeCode({ email, code, slug: SLUG });
  assertPair(c, ["otp"]);
  const set = await setPassword(c.json.access_token, PASSWORD);
  assert.equal(set.status, 200, set.text);
  assert.equal(set.json.data.attributes.has_password, true);
  const newPassword = `${PASSWORD}-otp`;
  recordSecret(newPassword);
  const changed = await changePassword(c.json.access_token, { new_password: newPassword });
  assert.equal(changed.status, 200, changed.text);
  remember(changed.json.meta);
  assert.equal((await login(email, newPassword)).status, 200);
  assert.equal(errorOf(await login(email, PASSWORD)).code, "invalid_credentials");
});

// ---------------------------------------------------------------------------------------
// Wrong codes: one answer for every case, attempt limits, what a refusal writes
// ---------------------------------------------------------------------------------------

test("a wrong code is 401 invalid, the same answer as for an email without an account or without a pending link", { timeout: TIMEOUT }, async () => {
  // No account at all.
  const stranger = uniqueEmail("code-stranger");
  const noAccount = await consumeCode({ email: stranger, code: "123456", slug: SLUG });
  // A member whose only link was used: its own (used) code.
  const member = uniqueEmail("code-nolink");
  await signUp(member);
  const usedCode = codeFrom((await mails(member))[0]);
  const noLink = await consumeCode({ email: member, code: usedCode, slug: SLUG });
  // A real pending link, a wrong code.
  const pending = uniqueEmail("code-pending");
  const { token, code } = await requestLink(register, { email: pending, slug: SLUG });
  const wrong = await consumeCode({ email: pending, code: wrongCode(code), slug: SLUG });

  const shape = (r) => {
    const e = errorOf(r);
    return {
      status: r.status, code: e.code, status_field: e.status, title: e.title, detail: e.detail,
      reason: e.meta.reason, meta: Object.keys(e.meta).sort(), source: e.source,
      headers: [...r.headers.keys()].filter((k) => !["date", "x-request-id"].includes(k)).sort(),
    };
  };
  for (const [name, r] of [["no account", noAccount], ["no pending link", noLink], ["wrong code", wrong]]) {
    assertRefused(r, "invalid", `${name}:`);
    assert.deepEqual(shape(r), shape(wrong), `${name} answers like a wrong code`);
  }
  assert.doesNotMatch(wrong.text, new RegExp(pending.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")), "no address in the error");

  // The wrong code did not hurt the pending link: its right code still signs in.
  assertPair(await consumeCode({ email: pending, code, slug: SLUG }), ["otp"]);
  assertRefused(await consume(token), "used");
});

test("4 wrong codes leave the code alive; after 5 the right code is refused, but the link still signs in", { timeout: TIMEOUT }, async () => {
  const alive = uniqueEmail("code-four");
  const dead = uniqueEmail("code-five");
  const [a, b] = await Promise.all([
    requestLink(register, { email: alive, slug: SLUG }),
    requestLink(register, { email: dead, slug: SLUG }),
  ]);
  for (let i = 1; i < LINK_ATTEMPTS; i++) assertRefused(await consumeCode({ email: alive, code: wrongCode(a.code, i), slug: SLUG }), "invalid", `wrong code ${i}:`);
  assertPair(await consumeCode({ email: alive, code: a.code, slug: SLUG }), ["otp"]);

  for (let i = 1; i <= LINK_ATTEMPTS; i++) assertRefused(await consumeCode({ email: dead, code: wrongCode(b.code, i), slug: SLUG }), "invalid", `wrong code ${i}:`);
  assertRefused(await consumeCode({ email: dead, code: b.code, slug: SLUG }), "invalid", "the right code after 5 wrong ones:");
  // Nobody can lock a member out by guessing: the link in the mail still works.
  const c = await consume(b.token);
  const claims = assertPair(c, ["magic_link"]);
  assert.equal(claims.tid, TEAM);
  assertRefused(await consumeCode({ email: dead, code: b.code, slug: SLUG }), "invalid");
});

test("a wrong code writes only rate counters and the link's own item; the link still works afterwards", { timeout: TIMEOUT }, async () => {
  const email = uniqueEmail("code-writes");
  const { token, code } = await requestLink(register, { email, slug: SLUG });
  const link = keyString(itemKey("magic", "--token", token));
  const before = await tableSnapshot();
  assertRefused(await consumeCode({ email, code: wrongCode(code), slug: SLUG }), "invalid");
  const changes = tableChanges(before, await tableSnapshot(), (k) => isRate(k) || k === link);
  assert.deepEqual(changes, [], "nothing but attempt counters was written");

  // A code for an address without any link writes nothing but rate counters.
  const again = await tableSnapshot();
  assertRefused(await consumeCode({ email: uniqueEmail("code-writes-none"), code: "654321", slug: SLUG }), "invalid");
  assert.deepEqual(tableChanges(again, await tableSnapshot(), isRate), []);

  assertPair(await consumeCode({ email, code, slug: SLUG }), ["otp"]);
});

// Concurrency: the stack runs several instances of the consume function.
test("9 parallel wrong codes for one link (under the per-email limit): all 401 invalid; the 5 attempts are spent atomically, so the right code is refused; the link still works", { timeout: TIMEOUT }, async () => {
  const email = uniqueEmail("code-race-wrong");
  const { token, code } = await requestLink(register, { email, slug: SLUG });
  const n = EMAIL_ATTEMPTS - 1;
  const results = await Promise.all(Array.from({ length: n }, (_, i) => consumeCode({ email, code: wrongCode(code, i + 1), slug: SLUG })));
  assert.equal(results.filter((r) => r.status === 401).length, n, results.map((r) => r.status).join(","));
  for (const r of results) assertRefused(r, "invalid");
  assertRefused(await consumeCode({ email, code, slug: SLUG }), "invalid", "the right code after 9 parallel wrong ones:");
  assertPair(await consume(token), ["magic_link"]);
});

test("20 parallel wrong codes for one link: none signs in, each is 401 invalid or 429; the right code is then refused; the link still works", { timeout: TIMEOUT }, async () => {
  const email = uniqueEmail("code-race-20");
  const { token, code } = await requestLink(register, { email, slug: SLUG });
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => consumeCode({ email, code: wrongCode(code, i + 1), slug: SLUG })));
  const statuses = results.map((r) => r.status).join(",");
  assert.equal(results.filter((r) => r.status === 200).length, 0, statuses);
  for (const r of results) {
    if (r.status === 429) assertRateLimited(r);
    else assertRefused(r, "invalid");
  }
  // 20 wrong codes spend the link's 5 attempts and reach the per-email limit of 10:
  // the right code is refused, as a dead code (401 invalid) or as rate limited (429).
  const right = await consumeCode({ email, code, slug: SLUG });
  if (right.status === 429) assertRateLimited(right);
  else assertRefused(right, "invalid", "the right code after 20 parallel wrong ones:");
  assertPair(await consume(token), ["magic_link"]);
});

test("the right code sent 10 times in parallel: exactly one 200, nine 401 invalid, and the link is used", { timeout: TIMEOUT }, async () => {
  const email = uniqueEmail("code-race-right");
  const { token, code } = await requestLink(register, { email, slug: SLUG });
  const results = await Promise.all(Array.from({ length: 10 }, () => consumeCode({ email, code, slug: SLUG })));
  const statuses = results.map((r) => r.status).join(",");
  const won = results.filter((r) => r.status === 200);
  const lost = results.filter((r) => r.status !== 200);
  assert.equal(won.length, 1, statuses);
  assert.equal(lost.length, 9, statuses);
  for (const r of lost) assertRefused(r, "invalid");
  const claims = assertPair(won[0], ["otp"]);
  assert.equal(claims.tid, TEAM);
  assertRefused(await consume(token), "used");
});

test("10 wrong codes an hour per email, across teams: then even the right code is 429 with Retry-After; links still work", { timeout: 180000 }, async () => {
  // The counter's window is an hour: start well inside one, so a window change cannot
  // reset it in the middle of the test.
  const left = 3600 - (Math.floor(Date.now() / 1000) % 3600);
  if (left < 90) await sleep((left + 1) * 1000);

  const email = uniqueEmail("code-email-limit");
  // Two teams, so the two sends do not share the per-team+email cooldown.
  const a = await requestLink(register, { email, slug: SLUG });
  const b = await requestLink(register, { email, slug: "other-hub" });
  for (let i = 1; i <= LINK_ATTEMPTS; i++) assertRefused(await consumeCode({ email, code: wrongCode(a.code, i), slug: SLUG }), "invalid", `team A wrong code ${i}:`);
  for (let i = 1; i <= EMAIL_ATTEMPTS - LINK_ATTEMPTS; i++) assertRefused(await consumeCode({ email, code: wrongCode(b.code, i), slug: "other-hub" }), "invalid", `team B wrong code ${i}:`);

  // A fresh link (no wrong code against it yet) for team A: its right code is 429 now.
  const c = await requestLink(register, { email, slug: SLUG });
  assertRateLimited(await consumeCode({ email, code: c.code, slug: SLUG }));
  assertRateLimited(await consumeCode({ email, code: c.code, team_id: TEAM }));
  // Links keep working: both teams' newest links sign in.
  const viaLink = await consume(c.token);
  assert.equal(assertPair(viaLink, ["magic_link"]).tid, TEAM);
  assert.equal(assertPair(await consume(b.token), ["magic_link"]).tid, "team_other");
  // Another address is not affected.
  const other = uniqueEmail("code-email-limit-other");
  const o = await requestLink(register, { email: other, slug: SLUG });
  assertPair(await consumeCode({ email: other, code: o.code, slug: SLUG }), ["otp"]);
});

// ---------------------------------------------------------------------------------------
// Superseded links and meta.reason
// ---------------------------------------------------------------------------------------

test("a newer link supersedes the older one's code too; meta.reason says unknown, superseded, used", { timeout: TIMEOUT }, async () => {
  const email = uniqueEmail("code-supersede");
  const first = await requestLink(register, { email, slug: SLUG });
  const second = await requestLink(register, { email, slug: SLUG }); // waits out the 2 s cooldown
  assert.notEqual(first.token, second.token);

  if (first.code !== second.code) {
    assertRefused(await consumeCode({ email, code: first.code, slug: SLUG }), "invalid", "the older link's code:");
  }
  assertRefused(await consume(first.token), "superseded", "the older link:");
  assertPair(await consumeCode({ email, code: second.code, slug: SLUG }), ["otp"]);
  assertRefused(await consume(second.token), "used", "the newer link after its code:");
  assertRefused(await consume(first.token), "superseded", "the older link stays superseded:");

  const unknown = randomBytes(32).toString("base64url");
  assert.equal(unknown.length, 43);
  assertRefused(await consume(unknown), "unknown", "a token that never existed:");
});

// ---------------------------------------------------------------------------------------
// Validation of the consume body
// ---------------------------------------------------------------------------------------

test("consume body: malformed codes, token mixed with code/email, a code without email or target: 422 at the field; nothing written", { timeout: TIMEOUT }, async () => {
  const email = uniqueEmail("code-422");
  const before = await tableSnapshot();
  const cases = [
    [{ email, code: "12345", slug: SLUG }, "/data/attributes/code"],
    [{ email, code: "1234567", slug: SLUG }, "/data/attributes/code"],
    [{ email, code: "12345a", slug: SLUG }, "/data/attributes/code"],
    [{ email, code: "abcdef", slug: SLUG }, "/data/attributes/code"],
    [{ email, code: "123.456", slug: SLUG }, "/data/attributes/code"],
    [{ email, code: "123_456", slug: SLUG }, "/data/attributes/code"],
    [{ email, code: "", slug: SLUG }, "/data/attributes/code"],
    [{ email, code: 123456, slug: SLUG }, "/data/attributes/code"],
    [{ token: randomBytes(32).toString("base64url"), code: "123456" }, "/data/attributes"],
    [{ token: randomBytes(32).toString("base64url"), email }, "/data/attributes"],
    [{ token: randomBytes(32).toString("base64url"), email, code: "123456", slug: SLUG }, "/data/attributes"],
    [{ code: "123456", slug: SLUG }, "/data/attributes/email"],
    [{ email, code: "123456" }, "/data/attributes"],
    [{ email, code: "123456", slug: SLUG, team_id: TEAM }, "/data/attributes"],
    [{ email: "not-an-email", code: "123456", slug: SLUG }, "/data/attributes/email"],
  ];
  for (const [attributes, pointer] of cases) {
    // Sent raw: these are not secrets, and recording "" or "12345" as one would make the
    // secrets-in-logs check match unrelated log text.
    const r = await call("POST", "/magic/consume", { body: doc("magic_link_consumes", attributes) });
    assertErrorDocument(r, 422, "validation_error", pointer);
  }
  assert.deepEqual(tableChanges(before, await tableSnapshot(), isRate), [], "a 422 writes nothing");
});

// ---------------------------------------------------------------------------------------
// Same-device binding (PKCE, S256)
// ---------------------------------------------------------------------------------------

test("register/magic: code_challenge must be 43 base64url chars with code_challenge_method S256, each needing the other; no mail on 422", { timeout: TIMEOUT }, async () => {
  const { challenge } = pkcePair();
  const cases = [
    [{ code_challenge: challenge.slice(0, 42), code_challenge_method: "S256" }, "/data/attributes/code_challenge"],
    [{ code_challenge: `${challenge}A`, code_challenge_method: "S256" }, "/data/attributes/code_challenge"],
    [{ code_challenge: `${challenge.slice(0, 42)}+`, code_challenge_method: "S256" }, "/data/attributes/code_challenge"],
    [{ code_challenge: `${challenge.slice(0, 42)}/`, code_challenge_method: "S256" }, "/data/attributes/code_challenge"],
    [{ code_challenge: `${challenge.slice(0, 42)}=`, code_challenge_method: "S256" }, "/data/attributes/code_challenge"],
    [{ code_challenge: "", code_challenge_method: "S256" }, "/data/attributes/code_challenge"],
    [{ code_challenge: 12345, code_challenge_method: "S256" }, "/data/attributes/code_challenge"],
    [{ code_challenge: challenge, code_challenge_method: "plain" }, "/data/attributes/code_challenge_method"],
    [{ code_challenge: challenge, code_challenge_method: "s256" }, "/data/attributes/code_challenge_method"],
    [{ code_challenge: challenge, code_challenge_method: "S512" }, "/data/attributes/code_challenge_method"],
    [{ code_challenge: challenge }, "/data/attributes/code_challenge_method"],
    [{ code_challenge_method: "S256" }, "/data/attributes/code_challenge"],
  ];
  const addresses = [];
  for (const fn of [register, magic]) {
    for (const [extra, pointer] of cases) {
      const email = uniqueEmail("pkce-422");
      addresses.push(email);
      const r = await fn({ email, slug: SLUG, ...extra });
      assertErrorDocument(r, 422, "validation_error", pointer);
    }
  }
  // A valid pair is accepted.
  const ok = uniqueEmail("pkce-ok");
  assert.equal((await register({ email: ok, slug: SLUG, code_challenge: challenge, code_challenge_method: "S256" })).status, 202);
  const okMail = await waitForMail(ok);
  tokenFrom(okMail);
  codeFrom(okMail);
  await mailerIdle();
  for (const email of addresses) assert.equal((await mails(email)).length, 0, "no mail after a 422");
});

test("a link with a challenge, by token: without or with a wrong verifier 401 verifier_mismatch, nothing written, still usable; the right verifier signs in", { timeout: TIMEOUT }, async () => {
  const email = uniqueEmail("pkce-token");
  const { verifier, challenge } = pkcePair();
  recordSecret(verifier);
  const { token } = await requestLink(register, { email, slug: SLUG, code_challenge: challenge, code_challenge_method: "S256" });

  const before = await tableSnapshot();
  assertRefused(await consume(token), "verifier_mismatch", "no verifier:");
  assertRefused(await consumeWith(token, { code_verifier: pkcePair().verifier }), "verifier_mismatch", "another verifier:");
  assertRefused(await consumeWith(token, { code_verifier: "-._~".repeat(11) }), "verifier_mismatch", "a verifier of the unreserved specials:");
  assertRefused(await consumeWith(token, { code_verifier: `${verifier}${"x".repeat(85)}` }), "verifier_mismatch", "a 128-char verifier:");
  assert.deepEqual(tableChanges(before, await tableSnapshot()), [], "a verifier_mismatch by token writes nothing");

  const c = await consumeWith(token, { code_verifier: verifier });
  const claims = assertPair(c, ["magic_link"]);
  assert.equal(claims.tid, TEAM);
  assert.equal((await me(c.json.access_token)).json.data.attributes.email, email);
  assertRefused(await consumeWith(token, { code_verifier: verifier }), "used");
});

test("a link with a challenge, by code: the right code without or with a wrong verifier is verifier_mismatch; with the right one amr otp", { timeout: TIMEOUT }, async () => {
  const email = uniqueEmail("pkce-code");
  const { verifier, challenge } = pkcePair();
  recordSecret(verifier);
  const { token, code } = await requestLink(register, { email, slug: SLUG, code_challenge: challenge, code_challenge_method: "S256" });
  const link = keyString(itemKey("magic", "--token", token));

  const before = await tableSnapshot();
  assertRefused(await consumeCode({ email, code, slug: SLUG }), "verifier_mismatch", "right code, no verifier:");
  assertRefused(await consumeCode({ email, code, slug: SLUG, code_verifier: pkcePair().verifier }), "verifier_mismatch", "right code, wrong verifier:");
  assert.deepEqual(tableChanges(before, await tableSnapshot(), (k) => isRate(k) || k === link), [], "only attempt counters");
  // A wrong code is `invalid` whatever the verifier: a mismatch must not tell a guesser
  // that a link exists for the address.
  assertRefused(await consumeCode({ email, code: wrongCode(code), slug: SLUG, code_verifier: verifier }), "invalid", "wrong code, right verifier:");
  assertRefused(await consumeCode({ email, code: wrongCode(code, 2), slug: SLUG }), "invalid", "wrong code, no verifier:");

  const c = await consumeCode({ email, code, slug: SLUG, code_verifier: verifier });
  const claims = assertPair(c, ["otp"]);
  assert.equal(claims.tid, TEAM);
  assertRefused(await consumeWith(token, { code_verifier: verifier }), "used", "the link after its code:");
});

test("code_verifier must be 43–128 chars of [A-Za-z0-9-._~]: else 422 at code_verifier, and the link stays usable", { timeout: TIMEOUT }, async () => {
  const byToken = uniqueEmail("pkce-v-token");
  const byCode = uniqueEmail("pkce-v-code");
  const p1 = pkcePair();
  const p2 = pkcePair();
  recordSecret(p1.verifier); recordSecret(p2.verifier);
  const [t, c] = await Promise.all([
    requestLink(register, { email: byToken, slug: SLUG, code_challenge: p1.challenge, code_challenge_method: "S256" }),
    requestLink(register, { email: byCode, slug: SLUG, code_challenge: p2.challenge, code_challenge_method: "S256" }),
  ]);
  const bad = [
    "a".repeat(42), "a".repeat(129), `${"a".repeat(42)}+`, `${"a".repeat(42)}/`, `${"a".repeat(42)}=`,
    `${"a".repeat(42)} `, `${"a".repeat(42)}é`, "", 1234567890,
  ];
  // Sent raw: malformed verifiers are no secrets (the link's token and code are recorded).
  const post = (attributes) => call("POST", "/magic/consume", { body: doc("magic_link_consumes", attributes) });
  for (const v of bad) {
    assertErrorDocument(await post({ token: t.token, code_verifier: v }), 422, "validation_error", "/data/attributes/code_verifier");
  }
  for (const v of bad.slice(0, 2)) {
    assertErrorDocument(await post({ email: byCode, code: c.code, slug: SLUG, code_verifier: v }), 422, "validation_error", "/data/attributes/code_verifier");
  }
  assertPair(await consumeWith(t.token, { code_verifier: p1.verifier }), ["magic_link"]);
  assertPair(await consumeCode({ email: byCode, code: c.code, slug: SLUG, code_verifier: p2.verifier }), ["otp"]);
});

test("a verifier sent for a link requested without a challenge is ignored, by token and by code", { timeout: TIMEOUT }, async () => {
  const byToken = uniqueEmail("pkce-none-token");
  const byCode = uniqueEmail("pkce-none-code");
  const [t, c] = await Promise.all([
    requestLink(register, { email: byToken, slug: SLUG }),
    requestLink(register, { email: byCode, slug: SLUG }),
  ]);
  assertPair(await consumeWith(t.token, { code_verifier: pkcePair().verifier }), ["magic_link"]);
  assertPair(await consumeCode({ email: byCode, code: c.code, slug: SLUG, code_verifier: "-._~".repeat(32) }), ["otp"]);
});

// ---------------------------------------------------------------------------------------
// Email-change links
// ---------------------------------------------------------------------------------------

test("email-change mails carry no code and do not supersede a pending sign-in link's code", { timeout: TIMEOUT }, async () => {
  const owner = uniqueEmail("code-change-owner");
  const target = uniqueEmail("code-change-target");
  const pair = await signUp(owner); // a fresh sign-in, as an email change needs
  const signIn = await requestLink(magic, { email: owner, slug: SLUG });

  const r = await patchMe(pair.access_token, { email: target });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.data.attributes.pending_email, target);
  const confirmation = await waitForMail(target);
  const notice = await mailWithSubject(owner, /email address is being changed/);
  await mailerIdle();
  const confirmationToken = tokenFrom(confirmation);
  tokenFrom(notice);
  assert.doesNotMatch(confirmation.body.text, /\b\d{3} \d{3}\b/, "no code in the confirmation mail");
  assert.doesNotMatch(notice.body.text, /\b\d{3} \d{3}\b/, "no code in the notice (undo link)");

  // The owner's sign-in link, requested before the change, still signs in by its code.
  const c = await consumeCode({ email: owner, code: signIn.code, slug: SLUG });
  assert.equal(assertPair(c, ["otp"]).sub, claimsOf(pair.access_token).sub);
  // And the change link still works after that sign-in.
  const switched = await consume(confirmationToken);
  assert.equal(switched.status, 200, switched.text);
  assert.deepEqual(claimsOf(switched.json.access_token).amr, ["email_change"]);
  assert.equal((await me(switched.json.access_token)).json.data.attributes.email, target);
});
