// End-to-end over HTTP against the local API (cargo lambda watch running the real
// function binaries, DynamoDB Local, the SES sink, the mailer in poll mode).

import { test } from "node:test";
import assert from "node:assert/strict";
import { createPublicKey, verify } from "node:crypto";
import {
  call, register, magic, consume, doc, mails, waitForMail, tokenFrom, uniqueEmail, signUp,
  ddb, sha256, mailerIdle, errorOf, JSONAPI, claimsOf, scanAll, tableSnapshot, tableChanges,
  assertErrorDocument,
  itemKey, KEY_PREFIX,
} from "./helpers.mjs";

function assertError(r, status, code, pointer) {
  assert.equal(r.status, status, `status for ${code}: ${r.text}`);
  const e = errorOf(r);
  assert.ok(e, `no JSON:API error body: ${r.text}`);
  assert.equal(e.code, code);
  assert.equal(e.status, String(status));
  if (pointer !== undefined) assert.equal(e.source && e.source.pointer, pointer);
  assert.equal(r.headers.get("content-type"), JSONAPI);
  assert.equal(e.meta.request_id, r.headers.get("x-request-id"), "meta.request_id repeats X-Request-ID");
}

test("register → mail in the inbox → consume → token pair → /me; the JWT verifies from the JWKS", async () => {
  const email = uniqueEmail("flow");
  const r = await register({ email, slug: "member-academy" });
  assert.equal(r.status, 202);
  assert.equal(r.text, "");
  assert.ok(r.headers.get("x-request-id"));
  const mail = await waitForMail(email);
  assert.equal(mail.subject, "Confirm your email for Member Academy");
  assert.match(mail.from, /Member Academy/);
  assert.ok(mail.body.text && mail.body.html, "multipart: text and HTML");
  const token = tokenFrom(mail);
  assert.ok(mail.body.text.includes(`/m?hub=member-academy&lang=en#token=${token}`));
  assert.ok(mail.body.html.includes(`/m?hub=member-academy&amp;lang=en#token=${token}`) || mail.body.html.includes(`/m?hub=member-academy&#38;lang=en#token=${token}`), "the link, HTML-escaped");

  const c = await consume(token);
  assert.equal(c.status, 200, c.text);
  assert.equal(c.json.token_type, "Bearer");
  assert.equal(c.json.expires_in, 900);
  assert.equal(c.json.refresh_expires_in, 2592000);
  assert.equal(c.json.redirect_url, null);
  assert.match(c.json.refresh_token, /^[A-Za-z0-9_-]{43}$/);
  const cookie = c.headers.get("set-cookie");
  for (const part of ["HttpOnly", "Secure", "SameSite=Strict", "Path=/api/v1/contact-auth"]) assert.ok(cookie.includes(part), cookie);

  // The access token verifies with the published key (RS256, by kid).
  const jwks = await call("GET", "/.well-known/jwks.json");
  assert.equal(jwks.status, 200);
  const [h, p, s] = c.json.access_token.split(".");
  const header = JSON.parse(Buffer.from(h, "base64url"));
  const claims = JSON.parse(Buffer.from(p, "base64url"));
  assert.equal(header.alg, "RS256");
  const jwk = jwks.json.keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, "kid is in the JWK set");
  const key = createPublicKey({ key: jwk, format: "jwk" });
  assert.ok(verify("sha256", Buffer.from(`${h}.${p}`), key, Buffer.from(s, "base64url")), "signature verifies");
  for (const k of ["iss", "aud", "sub", "tid", "hid", "tv", "amr", "auth_time", "iat", "exp", "jti", "sid"]) assert.ok(k in claims, `claim ${k}`);
  assert.deepEqual(claims.amr, ["magic_link"]);
  assert.equal(claims.tid, "team_abc123");
  assert.equal(claims.exp - claims.iat, 900);

  const me = await call("GET", "/me", { headers: { Authorization: `Bearer ${c.json.access_token}` } });
  assert.equal(me.status, 200);
  assert.equal(me.json.data.type, "contacts");
  assert.equal(me.json.data.id, claims.sub);
  assert.equal(me.json.data.attributes.email, email);
  assert.ok(me.json.data.attributes.email_verified_at);
  assert.equal(me.json.data.attributes.has_password, false);
  assert.deepEqual(me.json.data.attributes.team_memberships.map((m) => m.team_id), ["team_abc123"]);

  // A link works once.
  assertError(await consume(token), 401, "magic_link_invalid");
});

test("an existing member who registers again gets a plain sign-in link; magic sends sign-in links only to members", async () => {
  const email = uniqueEmail("member");
  await signUp(email);
  let before = (await mails(email)).length;
  await new Promise((r) => setTimeout(r, 2100)); // the test stack's per-email cooldown
  assert.equal((await register({ email, slug: "member-academy" })).status, 202);
  assert.equal((await waitForMail(email, before)).subject, "Sign in to Member Academy");

  before = (await mails(email)).length;
  await new Promise((r) => setTimeout(r, 2100));
  assert.equal((await magic({ email, slug: "my-hub" })).status, 202);
  const m = await waitForMail(email, before);
  assert.equal(m.subject, "Sign in to My Hub");
  const c = await consume(tokenFrom(m));
  assert.equal(c.status, 200);

  const stranger = uniqueEmail("stranger");
  assert.equal((await magic({ email: stranger, slug: "member-academy" })).status, 202);
  await mailerIdle();
  assert.equal((await mails(stranger)).length, 0, "no mail to a non-member");
});

test("a contact of another team joins by registering on this hub", async () => {
  const email = uniqueEmail("joiner");
  await signUp(email, { slug: "other-hub" });
  const before = (await mails(email)).length;
  assert.equal((await register({ email, team_id: "team_abc123" })).status, 202);
  const m = await waitForMail(email, before);
  assert.equal(m.subject, "Join Member Academy", "team_id path names the team's primary hub");
  const c = await consume(tokenFrom(m));
  assert.equal(c.status, 200);
  const me = await call("GET", "/me", { headers: { Authorization: `Bearer ${c.json.access_token}` } });
  assert.deepEqual(me.json.data.attributes.team_memberships.map((x) => x.team_id).sort(), ["team_abc123", "team_other"]);
});

test("a hub with registration disabled sends nothing to new emails and still answers 202", async () => {
  const email = uniqueEmail("closed");
  assert.equal((await register({ email, slug: "closed-hub" })).status, 202);
  await mailerIdle();
  assert.equal((await mails(email)).length, 0);
});

test("unknown hub, unknown team, existing and new emails all answer the same 202", async () => {
  const existing = uniqueEmail("known");
  await signUp(existing);
  await new Promise((r) => setTimeout(r, 2100));
  const answers = await Promise.all([
    register({ email: existing, slug: "member-academy" }),
    register({ email: uniqueEmail("new"), slug: "member-academy" }),
    register({ email: uniqueEmail("nohub"), slug: "no-such-hub" }),
    register({ email: uniqueEmail("noteam"), team_id: "team_missing" }),
  ]);
  const shape = (r) => ({
    status: r.status, body: r.text,
    headers: [...r.headers.keys()].filter((k) => !["date", "x-request-id"].includes(k)).sort(),
  });
  for (const a of answers) assert.deepEqual(shape(a), shape(answers[0]));
  assert.equal(answers[0].status, 202);
});

test("an allow-listed redirect_url is bound to the link: the mail links there and consume returns it", async () => {
  const email = uniqueEmail("redirect");
  assert.equal((await register({ email, slug: "my-hub", redirect_url: "http://localhost:5173/welcome?from=mail" })).status, 202);
  const m = await waitForMail(email);
  assert.match(m.body.text, /http:\/\/localhost:5173\/welcome\?from=mail#token=[A-Za-z0-9_-]{43}/);
  const c = await consume(tokenFrom(m));
  assert.equal(c.status, 200);
  assert.equal(c.json.redirect_url, "http://localhost:5173/welcome?from=mail");
});

// Supersede over HTTP, where the mailer itself writes the newest-link pointer (after SES
// took the mail); this replaces the replay fixture events/magic-consume/superseded.
test("a newer link supersedes the older one: the older is refused and writes nothing, the newer signs in", async () => {
  const email = uniqueEmail("newer");
  await signUp(email);
  let before = (await mails(email)).length;
  await new Promise((r) => setTimeout(r, 2100));
  assert.equal((await magic({ email, slug: "member-academy" })).status, 202);
  const older = tokenFrom(await waitForMail(email, before));
  before = (await mails(email)).length;
  await new Promise((r) => setTimeout(r, 2100));
  assert.equal((await magic({ email, slug: "member-academy" })).status, 202);
  const newer = tokenFrom(await waitForMail(email, before));
  assert.notEqual(older, newer);
  await mailerIdle(); // the job is retired only after the newest-link pointer is written
  const table = await tableSnapshot();
  assertErrorDocument(await consume(older), 401, "magic_link_invalid");
  assert.deepEqual(tableChanges(table, await tableSnapshot()), [], "the refused consume wrote nothing");
  assert.equal((await consume(newer)).status, 200);
});

// Expiry is tested in the fixture replay with an injected clock, at the boundary
// (tests/replay.rs scenario/an_expired_link_is_refused_even_before_ttl_deletion: 899 s
// signs in, 901 s is 401) and as events/magic-consume/expired (whole error envelope,
// nothing written; also through the function binary by make invoke).

// Concurrency over HTTP: four instances of magic-consume, each with its own client.
test("50 concurrent consumes of one link: one 200 signs in, 49 × 401 magic_link_invalid, exactly one contact", async () => {
  const email = uniqueEmail("race");
  assert.equal((await register({ email, slug: "member-academy" })).status, 202);
  const token = tokenFrom(await waitForMail(email));
  await mailerIdle(); // the link is the newest one (the mailer writes that after sending)
  const results = await Promise.all(Array.from({ length: 50 }, () => consume(token)));
  const statuses = results.map((r) => r.status).join(",");
  const won = results.filter((r) => r.status === 200);
  const lost = results.filter((r) => r.status === 401);
  assert.equal(won.length, 1, statuses);
  assert.equal(lost.length, 49, statuses);
  for (const r of lost) assertErrorDocument(r, 401, "magic_link_invalid");
  const claims = claimsOf(won[0].json.access_token);
  assert.deepEqual(claims.amr, ["magic_link"]);
  assert.equal(claims.tid, "team_abc123");

  // Exactly one contact for the address: one profile, the email index naming it (the
  // winner's sub), one membership, one session; the link is marked used.
  const profiles = await scanAll({
    FilterExpression: "sk = :p AND email_key = :e",
    ExpressionAttributeValues: { ":p": { S: "PROFILE" }, ":e": { S: email } },
  });
  assert.equal(profiles.length, 1, `${profiles.length} contacts for the address`);
  const contactId = profiles[0].contact_id.S;
  assert.equal(contactId, claims.sub);
  const index = await ddb("GetItem", { Key: itemKey("email", "--email", email), ConsistentRead: true });
  assert.equal(index.Item && index.Item.contact_id.S, contactId, "EMAIL# names the contact");
  const memberships = await ddb("Query", {
    KeyConditionExpression: "pk = :c AND begins_with(sk, :t)",
    ExpressionAttributeValues: { ":c": itemKey("profile", "--contact", contactId).pk, ":t": { S: KEY_PREFIX.membership_sk } },
    ConsistentRead: true,
  });
  assert.deepEqual(memberships.Items.map((m) => m.sk.S), [itemKey("membership", "--contact", contactId, "--team", "team_abc123").sk.S]);
  const sessions = await scanAll({
    FilterExpression: "begins_with(pk, :rt) AND contact_id = :c",
    ExpressionAttributeValues: { ":rt": { S: KEY_PREFIX.refresh }, ":c": { S: contactId } },
  });
  assert.equal(sessions.length, 1, `${sessions.length} sessions issued`);
  const link = await ddb("GetItem", { Key: itemKey("magic", "--token", token), ConsistentRead: true });
  assert.ok(link.Item && link.Item.used_at, "the link is marked used");
});

test("per-email rate limit: a second request within the cooldown is 429 with Retry-After", async () => {
  const email = uniqueEmail("rate");
  assert.equal((await magic({ email, slug: "member-academy" })).status, 202);
  const r = await register({ email, slug: "member-academy" });
  assertError(r, 429, "rate_limited");
  const retry = Number(r.headers.get("retry-after"));
  assert.ok(retry >= 1 && retry <= 2, `Retry-After ${retry}`);
  assert.match(errorOf(r).detail, /Retry in \d+ second/);
});

// The request edge's 4xx answers: one replay fixture each (events/<function>/<case>, judged
// by testkit::verdict: the whole error envelope, exact headers, and the whole table
// unchanged), and over HTTP on every route by the hostile corpus (hostile.test.mjs).

test("CORS: the allowed origin gets credentials CORS, others get no CORS headers", async () => {
  const pre = await call("OPTIONS", "/register", { headers: { Origin: "http://localhost:5173", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,authorization" } });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get("access-control-allow-origin"), "http://localhost:5173");
  assert.equal(pre.headers.get("access-control-allow-credentials"), "true");
  assert.match(pre.headers.get("access-control-allow-headers"), /Authorization/);
  assert.match(pre.headers.get("access-control-allow-headers"), /Content-Type/);
  const evil = await call("OPTIONS", "/register", { headers: { Origin: "https://evil.example.com", "Access-Control-Request-Method": "POST" } });
  assert.equal(evil.headers.get("access-control-allow-origin"), null);
  const actual = await register({ email: uniqueEmail("cors"), slug: "my-hub" });
  assert.equal(actual.headers.get("access-control-allow-origin"), null, "no Origin, no CORS");
  const fromApp = await call("POST", "/register", { body: doc("register_requests", { email: uniqueEmail("cors"), slug: "my-hub" }), headers: { Origin: "http://localhost:5173" } });
  assert.equal(fromApp.status, 202);
  assert.equal(fromApp.headers.get("access-control-allow-origin"), "http://localhost:5173");
});
