// Regression tests for the security review (issue 8), over HTTP against the local stack
// (several instances per function, as Lambda runs them). Each test names the defect it
// keeps closed. Recent-authentication *windows* are tested in the fixture replay with an
// injected clock (events/me-patch, events/password-set, events/password-change); here a
// fresh sign-in is always recent.

import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import {
  call, doc, consume, register, magic, mails, waitForMail, tokenFrom, uniqueEmail, signUp,
  ddb, errorOf, recordSecret, admin, bearer, claimsOf, mailerIdle, sha256, sleep, assertError,
  me, patchMe, setPassword, changePassword, refreshBody, login,
  itemKey, KEY_PREFIX,
  send, mailWithSubject, waitForLink, signIn,
} from "./helpers.mjs";

const PASSWORD = "quartz-meadow-lantern-97";
recordSecret(PASSWORD);

test("item 2: a stolen token's email change dies with logout-everywhere, and the owner is told", async () => {
  const owner = uniqueEmail("owner");
  const attacker = uniqueEmail("attacker");
  const stolen = await signUp(owner);
  const r = await patchMe(stolen.access_token, { email: attacker });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.data.attributes.pending_email, attacker);
  assert.equal(r.json.data.attributes.email, owner);

  // The current address gets a notice naming the new one masked, with an undo link.
  const notice = await mailWithSubject(owner, /email address is being changed/);
  assert.match(notice.body.text, /a\*\*\*@example\.com/);
  assert.ok(!notice.body.text.includes(attacker), "the notice must not show the full new address");
  tokenFrom(notice);
  const confirmation = tokenFrom(await waitForMail(attacker));

  // The owner signs in and ends every session: the pending change ends with them.
  const own = await signIn(owner);
  assert.equal((await call("POST", "/logout-everywhere", { headers: bearer(own.access_token) })).status, 204);
  assertError(await consume(confirmation), 401, "magic_link_invalid");
  const after = await signIn(owner);
  const profile = (await me(after.access_token)).json.data.attributes;
  assert.equal(profile.email, owner);
  assert.equal(profile.pending_email, null);
});

test("item 2: an email-change session is not a fresh sign-in; the undo link restores the address and ends every session", async () => {
  const owner = uniqueEmail("victim");
  const attacker = uniqueEmail("thief");
  const stolen = await signUp(owner);
  assert.equal((await patchMe(stolen.access_token, { email: attacker })).status, 200);
  const undo = tokenFrom(await mailWithSubject(owner, /email address is being changed/));
  const switched = await consume(tokenFrom(await waitForMail(attacker)));
  assert.equal(switched.status, 200, switched.text);
  assert.deepEqual(claimsOf(switched.json.access_token).amr, ["email_change"]);
  assert.equal((await me(switched.json.access_token)).json.data.attributes.email, attacker);

  // The attacker's fresh email-change session cannot plant a password or move the address on.
  assertError(await setPassword(switched.json.access_token, PASSWORD), 403, "reauthentication_required");
  assertError(await patchMe(switched.json.access_token, { email: uniqueEmail("next") }), 403, "reauthentication_required");

  // The owner undoes it from the old mailbox.
  const u = await consume(undo);
  assert.equal(u.status, 200, u.text);
  assert.deepEqual(u.json, { undone: "email_change", password_removed: false, redirect_url: null });
  assert.equal(u.json.access_token, undefined, "an undo signs nobody in");
  assertError(await me(switched.json.access_token), 401, "unauthorized");
  assertError(await refreshBody(switched.json.refresh_token), 401, "refresh_token_invalid");
  assertError(await consume(undo), 401, "magic_link_invalid");
  const back = await signIn(owner);
  // The old address is back, and nothing is pending any more.
  const profile = (await me(back.access_token)).json.data.attributes;
  assert.equal(profile.email, owner);
  assert.equal(profile.pending_email, null);
});

test("item 2: undo removes a password set after the change request; password notices", async () => {
  const a = uniqueEmail("pwafter");
  const pa = await signUp(a);
  assert.equal((await patchMe(pa.access_token, { email: uniqueEmail("newaddr") })).status, 200);
  const undo = tokenFrom(await mailWithSubject(a, /email address is being changed/));
  assert.equal((await setPassword(pa.access_token, PASSWORD)).status, 200);
  const setNotice = await mailWithSubject(a, /password was set/);
  assert.ok(!setNotice.body.text.includes(PASSWORD));
  assert.equal((await consume(undo)).status, 200);
  const back = await signIn(a);
  assert.equal((await me(back.access_token)).json.data.attributes.has_password, false);
  assertError(await login(a, PASSWORD), 401, "invalid_credentials");
  // Which passwords an undo keeps (set more than 7 days before the chain began) needs
  // time travel: replay scenario an_undo_removes_a_password_younger_than_7_days_before_the_chain.

  // A password change sends a notice too.
  const b = uniqueEmail("pwchange");
  const pb = await signUp(b);
  assert.equal((await setPassword(pb.access_token, PASSWORD)).status, 200);
  const fresh = (await login(b, PASSWORD)).json;
  recordSecret(fresh.access_token); recordSecret(fresh.refresh_token);
  const changed = await changePassword(fresh.access_token, { current_password: PASSWORD, new_password: `${PASSWORD}-2` });
  recordSecret(`${PASSWORD}-2`);
  assert.equal(changed.status, 200, changed.text);
  recordSecret(changed.json.meta.access_token); recordSecret(changed.json.meta.refresh_token);
  await mailWithSubject(b, /password was changed/);
});

test("item 2: a pending change ends with a newer change, with setting the address back, and with a password change", async () => {
  const owner = uniqueEmail("pending");
  const pair = await signUp(owner);
  assert.equal((await setPassword(pair.access_token, PASSWORD)).status, 200);
  const first = uniqueEmail("first");
  const second = uniqueEmail("second");
  assert.equal((await patchMe(pair.access_token, { email: first })).status, 200);
  const firstLink = tokenFrom(await waitForMail(first));
  assert.equal((await patchMe(pair.access_token, { email: second })).status, 200);
  const secondLink = tokenFrom(await waitForMail(second));
  assertError(await consume(firstLink), 401, "magic_link_invalid");
  // Back to the current address: the pending change is cancelled.
  const back = await patchMe(pair.access_token, { email: owner });
  assert.equal(back.json.data.attributes.pending_email, null);
  assertError(await consume(secondLink), 401, "magic_link_invalid");
  // A password change ends a pending change.
  await sleep(2100); // the test stack's per-address mail cooldown
  const third = uniqueEmail("third");
  assert.equal((await patchMe(pair.access_token, { email: third })).status, 200);
  const thirdLink = tokenFrom(await waitForMail(third));
  const changed = await changePassword(pair.access_token, { current_password: PASSWORD, new_password: `${PASSWORD}-x` });
  recordSecret(`${PASSWORD}-x`);
  assert.equal(changed.status, 200, changed.text);
  recordSecret(changed.json.meta.access_token); recordSecret(changed.json.meta.refresh_token);
  assertError(await consume(thirdLink), 401, "magic_link_invalid");
});

test("item 9: two pending changes to one address from two teams never give a 500", async () => {
  const owner = uniqueEmail("twoteams");
  const a = await signUp(owner);
  // Join the other team: a register on its hub sends a join link.
  const before = (await mails(owner)).length;
  assert.equal((await register({ email: owner, slug: "other-hub" })).status, 202);
  const joined = await consume(tokenFrom(await waitForMail(owner, before)));
  assert.equal(joined.status, 200, joined.text);
  assert.equal(claimsOf(joined.json.access_token).tid, "team_other");
  const target = uniqueEmail("shared");
  assert.equal((await patchMe(a.access_token, { email: target })).status, 200);
  await waitForMail(target);
  assert.equal((await patchMe(joined.json.access_token, { email: target })).status, 200);
  await waitForMail(target, 1);
  await mailerIdle();
  const links = (await mails(target)).map(tokenFrom);
  assert.equal(links.length, 2);
  const statuses = [];
  for (const t of links) statuses.push((await consume(t)).status);
  assert.deepEqual(statuses.sort(), [200, 401], `statuses ${statuses}`);
  const signedIn = await signIn(target);
  assert.equal((await me(signedIn.access_token)).json.data.attributes.email, target);
});

test("item 3: a banned member's tokens stop working, and unbanning does not revive them", async () => {
  const email = uniqueEmail("banned");
  const pair = await signUp(email);
  assert.equal((await me(pair.access_token)).status, 200);
  admin("ban", "--team", "team_abc123", "--email", email);
  const denied = await me(pair.access_token);
  assertError(denied, 401, "unauthorized");
  assert.equal(denied.headers.get("www-authenticate"), "Bearer");
  assertError(await refreshBody(pair.refresh_token), 401, "refresh_token_invalid");
  assertError(await patchMe(pair.access_token, { tos_version: "v2" }), 401, "unauthorized");
  // No sign-in link for a banned member.
  const before = (await mails(email)).length;
  assert.equal((await send(magic, { email, slug: "member-academy" })).status, 202);
  await mailerIdle();
  assert.equal((await mails(email)).length, before);

  admin("unban", "--team", "team_abc123", "--email", email);
  assertError(await me(pair.access_token), 401, "unauthorized");
  assertError(await refreshBody(pair.refresh_token), 401, "refresh_token_invalid");
  await sleep(1100); // a sign-in in the ban's own second would count as before it
  const fresh = await signIn(email);
  assert.equal((await me(fresh.access_token)).status, 200);
});

test("item 4: 25 parallel wrong passwords get at most 10 verifications; the right one is then 429", async () => {
  const email = uniqueEmail("guess");
  const pair = await signUp(email);
  assert.equal((await setPassword(pair.access_token, PASSWORD)).status, 200);
  const guesses = await Promise.all(Array.from({ length: 25 }, (_, i) => login(email, `wrong-guess-${i}-xyz`)));
  const count = (s) => guesses.filter((r) => r.status === s).length;
  assert.equal(count(401) + count(429), 25, guesses.map((r) => r.status).join(","));
  assert.ok(count(401) <= 10, `${count(401)} answered 401`);
  assert.ok(count(429) >= 15, `${count(429)} answered 429`);
  for (const r of guesses.filter((g) => g.status === 429)) {
    assert.equal(errorOf(r).code, "rate_limited");
    assert.ok(Number(r.headers.get("retry-after")) >= 1);
  }
  assertError(await login(email, PASSWORD), 429, "rate_limited");
  // Wrong current passwords draw on the same counter.
  assertError(await changePassword(pair.access_token, { current_password: "still-wrong-123", new_password: `${PASSWORD}-z` }), 429, "rate_limited");
});

test("item 1: a cached 'no such hub' never lets a redirect_url through", async () => {
  const slug = `late-${randomBytes(4).toString("hex")}`;
  const victim = uniqueEmail("redir");
  await signUp(victim);
  const evil = "https://evil.example/cb";
  // Prime every instance's hub cache with "no such hub".
  const primed = await Promise.all(Array.from({ length: 8 }, () => magic({ email: uniqueEmail("prime"), slug, redirect_url: evil })));
  assert.ok(primed.every((r) => r.status === 202));
  admin("hub", "--id", `hub_${slug}`, "--slug", slug, "--team", "team_abc123", "--title", "Late Hub", "--origins", "http://localhost:5173");
  const before = (await mails(victim)).length;
  const tries = await Promise.all(Array.from({ length: 8 }, () => magic({ email: victim, slug, redirect_url: evil })));
  for (const r of tries) assertError(r, 422, "redirect_url_not_allowed");
  await mailerIdle();
  const after = await mails(victim);
  assert.equal(after.length, before);
  assert.ok(!after.some((m) => m.body.text.includes("evil.example")));
});

test("item 1: an origin removed from the allowlist is refused at once, and the mailer re-checks every job", async () => {
  const slug = `allow-${randomBytes(4).toString("hex")}`;
  admin("hub", "--id", `hub_${slug}`, "--slug", slug, "--team", "team_abc123", "--title", "Allow Hub", "--origins", "https://app.example.test");
  const member = uniqueEmail("origin");
  await signUp(member);
  const ok = await send(magic, { email: member, slug, redirect_url: "https://app.example.test/cb" });
  assert.equal(ok.status, 202, ok.text);
  assert.match((await mailWithSubject(member, /Sign in to Allow Hub/)).body.text, /https:\/\/app\.example\.test\/cb#token=/);
  admin("origins", "--slug", slug, "--set", "http://localhost:5173");
  await sleep(2100);
  assertError(await magic({ email: member, slug, redirect_url: "https://app.example.test/cb" }), 422, "redirect_url_not_allowed");

  // A job that carries an origin the hub does not allow (as a stale request path could
  // have queued it): the mailer sends the hosted-page link instead.
  const before = (await mails(member)).length;
  const jobId = `job-${randomBytes(8).toString("hex")}`;
  await ddb("PutItem", {
    Item: {
      ...itemKey("job", "--id", jobId), kind: { S: "mail_job" }, job_id: { S: jobId },
      purpose: { S: "magic" }, slug: { S: slug }, team_id: { NULL: true }, email: { S: member },
      email_key: { S: member }, redirect_url: { S: "https://evil.example/cb" },
      created_at: { N: String(Math.floor(Date.now() / 1000)) }, contact_id: { NULL: true },
      expires_at: { N: String(Math.floor(Date.now() / 1000) + 3600) },
    },
  });
  const mail = await waitForMail(member, before);
  assert.ok(!mail.body.text.includes("evil.example"), mail.body.text);
  assert.match(mail.body.text, /\/m\?[^#\s]*#token=/);
  tokenFrom(mail);
});

test("items 5, 7: addresses SES cannot deliver are refused; IDN domains are one identity; mail goes to the stored address", async () => {
  for (const email of ["<x@example.com>", "jörg@example.com", '"a b"@example.com', "a,b@example.com"]) {
    const r = await register({ email, slug: "member-academy" });
    assertError(r, 422, "validation_error");
    assert.equal(errorOf(r).source.pointer, "/data/attributes/email");
  }
  const local = `idn-${randomBytes(4).toString("hex")}`;
  const ascii = `${local}@xn--exmple-cua.com`;
  recordSecret(ascii);
  assert.equal((await register({ email: `${local}@exämple.com`, slug: "member-academy" })).status, 202);
  const pair = await consume(tokenFrom(await waitForMail(ascii)));
  assert.equal(pair.status, 200);
  assert.equal((await me(pair.json.access_token)).json.data.attributes.email, ascii);
  // The ASCII spelling is the same identity: a sign-in mail, to the same address.
  const signedIn = await signIn(ascii);
  assert.equal(claimsOf(signedIn.access_token).sub, claimsOf(pair.json.access_token).sub);

  const tag = randomBytes(4).toString("hex");
  const stored = `Mixed-${tag}@example.com`;
  recordSecret(stored);
  await signUp(stored);
  const typed = `mixed-${tag}@example.com`;
  recordSecret(typed);
  const before = (await mails(stored)).length;
  assert.equal((await send(magic, { email: typed, slug: "member-academy" })).status, 202);
  await waitForMail(stored, before);
  assert.equal((await mails(typed)).length, 0, "nothing goes to the address as typed");
});

test("item 6: an out-of-range tos_accepted_at is a 422, never a 500", async () => {
  const pair = await signUp(uniqueEmail("tos"));
  for (const t of ["0000-01-01T00:00:00+00:01", "1969-12-31T23:59:59Z", "9999-12-31T23:59:59-01:00", "2026-13-01T00:00:00Z"]) {
    const r = await patchMe(pair.access_token, { tos_accepted_at: t });
    assertError(r, 422, "validation_error");
    assert.equal(errorOf(r).source.pointer, "/data/attributes/tos_accepted_at");
  }
  const ok = await patchMe(pair.access_token, { tos_accepted_at: "2026-01-01T10:00:00+02:00" });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.data.attributes.tos_accepted_at, "2026-01-01T08:00:00Z");
});

test("item 8: logout revokes the family for as long as any of its tokens can live", async () => {
  const pair = await signUp(uniqueEmail("family"));
  const rotated = await refreshBody(pair.refresh_token);
  assert.equal(rotated.status, 200);
  recordSecret(rotated.json.access_token); recordSecret(rotated.json.refresh_token);
  // Logout with the older (rotated-out) token of the family.
  const key = (t) => itemKey("refresh", "--token", t);
  const older = (await ddb("GetItem", { Key: key(pair.refresh_token), ConsistentRead: true })).Item;
  const newer = (await ddb("GetItem", { Key: key(rotated.json.refresh_token), ConsistentRead: true })).Item;
  assert.equal((await call("POST", "/logout", { body: doc("refresh_requests", { refresh_token: pair.refresh_token }) })).status, 204);
  const fam = (await ddb("GetItem", { Key: itemKey("family", "--id", older.family_id.S), ConsistentRead: true })).Item;
  assert.ok(fam && fam.revoked_at, "family revoked");
  assert.ok(Number(fam.expires_at.N) >= Number(newer.expires_at.N), "the revocation outlives the newest token");
  assert.ok(Number(fam.expires_at.N) >= Number(older.auth_time.N) + 90 * 86400 - 5, "and the whole session lifetime");
  assertError(await refreshBody(rotated.json.refresh_token), 401, "refresh_token_invalid");
});

test("item 10: several refresh cookies are refused by refresh and revoke nothing on logout; nosniff everywhere", async () => {
  const a = await signUp(uniqueEmail("cookie-a"));
  const b = await signUp(uniqueEmail("cookie-b"));
  const both = { Cookie: `contact_refresh=${a.refresh_token}; contact_refresh=${b.refresh_token}` };
  assertError(await call("POST", "/refresh", { headers: both }), 401, "refresh_token_invalid");
  const out = await call("POST", "/logout", { headers: both });
  assert.equal(out.status, 204);
  assert.match(out.headers.get("set-cookie"), /contact_refresh=; .*Max-Age=0/);
  for (const t of [a.refresh_token, b.refresh_token]) {
    const r = await refreshBody(t);
    assert.equal(r.status, 200, "logout with two cookies revoked nothing");
    recordSecret(r.json.access_token); recordSecret(r.json.refresh_token);
  }
  for (const r of [out, await call("GET", "/.well-known/jwks.json"), await call("POST", "/magic", { body: {} }), await call("GET", "/m")]) {
    assert.equal(r.headers.get("x-content-type-options"), "nosniff");
  }
});
