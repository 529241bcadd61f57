// The README's "Decisions where the contract is silent", end to end: one test per
// decision, each asserting what the code does (not only a status). Above each test, a
// comment says what a regression would look like, so it is clear how the test fails.
// The test stack (tools/test.mjs) runs with a 2 s email cooldown, a 2 s refresh grace
// (REFRESH_REUSE_GRACE_SECONDS) and the default 10 failed logins per 15 minutes.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, createPublicKey, randomBytes, verify } from "node:crypto";
import {
  API_URL, call, doc, register, magic, consume, mails, waitForMail, tokenFrom, uniqueEmail,
  signUp, ddb, sha256, mailerIdle, errorOf, recordSecret, remember, admin, claimsOf, sleep,
  assertError, me, patchMe, setPassword, refreshBody, login,
  itemKey, KEY_PREFIX,
  send,
} from "./helpers.mjs";

const PASSWORD = "amber-lighthouse-cobalt-53";
recordSecret(PASSWORD);

/** The test stack's limit of failed logins per team+email (RATE_LOGIN_FAILURES_PER_15MIN, not set: the default). */
const LOGIN_FAILURES = 10;

/** The stored RT# item of a refresh token (consistent read), or undefined. */
async function refreshItem(token) {
  const r = await ddb("GetItem", { Key: itemKey("refresh", "--token", token), ConsistentRead: true });
  return r.Item;
}

/** The JOSE header of a JWT. */
const headerOf = (jwt) => JSON.parse(Buffer.from(jwt.split(".")[0], "base64url"));

/** A refresh answer's pair is recorded (secrets-in-logs check); returns the answer. */
function kept(r) {
  if (r.json && r.json.access_token) remember(r.json);
  return r;
}

// Breaking it: if the body won over the cookie, the new access token's `sub` would be the
// body's contact, the body's RT# item would carry `rotated_at` (and, after the grace, the
// body token would be refused as reuse), and the cookie's token would still be unrotated.
test("POST /refresh: the refresh cookie wins over the body", async () => {
  const x = await signUp(uniqueEmail("cookie-wins"));
  const y = await signUp(uniqueEmail("body-loses"));
  const subX = claimsOf(x.access_token).sub;
  const subY = claimsOf(y.access_token).sub;
  assert.notEqual(subX, subY);

  const r = kept(await call("POST", "/refresh", {
    headers: { Cookie: `contact_refresh=${x.refresh_token}` },
    body: doc("refresh_requests", { refresh_token: y.refresh_token }),
  }));
  assert.equal(r.status, 200, r.text);
  assert.equal(claimsOf(r.json.access_token).sub, subX, "the session is the cookie's contact");
  assert.notEqual(r.json.refresh_token, x.refresh_token);

  // The cookie's token was rotated (into the new one); the body's token was not touched.
  const rotated = await refreshItem(x.refresh_token);
  assert.ok(rotated.rotated_at, "the cookie's token is rotated");
  assert.equal(rotated.replaced_by.S, sha256(r.json.refresh_token));
  const untouched = await refreshItem(y.refresh_token);
  assert.equal(untouched.rotated_at, undefined, "the body's token is not rotated");
  assert.equal(untouched.revoked_at, undefined);

  // After the grace window: the body's token is still a plain first rotation for its own
  // contact; the cookie's token, presented again, is reuse.
  await sleep(3000);
  const viaBody = kept(await refreshBody(y.refresh_token));
  assert.equal(viaBody.status, 200, viaBody.text);
  assert.equal(claimsOf(viaBody.json.access_token).sub, subY);
  assertError(await refreshBody(x.refresh_token), 401, "refresh_token_reused");
});

// Breaking it: if logout revoked only the presented token B, the rotated-out token A
// (still inside the 2 s grace) would get a fresh pair (200) instead of 401, and no
// RTFAMILY# item would exist.
test("POST /logout revokes the whole family: the rotated-out token is refused too", async () => {
  const a = await signUp(uniqueEmail("family-logout"));
  const t0 = Date.now();
  const b = kept(await refreshBody(a.refresh_token));
  assert.equal(b.status, 200, b.text);
  const familyId = (await refreshItem(a.refresh_token)).family_id.S;
  assert.equal((await refreshItem(b.json.refresh_token)).family_id.S, familyId, "one family");

  const out = await call("POST", "/logout", { body: doc("refresh_requests", { refresh_token: b.json.refresh_token }) });
  assert.equal(out.status, 204);
  assert.match(out.headers.get("set-cookie"), /contact_refresh=; .*Max-Age=0/);

  // A, rotated into B moments ago, would still be inside the grace window.
  const viaA = await refreshBody(a.refresh_token);
  kept(viaA);
  const elapsed = Date.now() - t0;
  assert.equal(viaA.status, 401, viaA.text);
  if (elapsed < 2000) {
    // Inside the grace window the rotation is refused by the family check alone.
    assertError(viaA, 401, "refresh_token_invalid");
  } else {
    // A slow machine: past the grace it is reuse either way (reported, not a failure).
    assert.ok(["refresh_token_invalid", "refresh_token_reused"].includes(errorOf(viaA).code), viaA.text);
    console.log(`# logout family test: ${elapsed} ms since the rotation, past the 2 s grace`);
  }
  assertError(await refreshBody(b.json.refresh_token), 401, "refresh_token_invalid");

  const fam = (await ddb("GetItem", { Key: { pk: { S: `RTFAMILY#${familyId}` }, sk: { S: "RTFAMILY" } }, ConsistentRead: true })).Item;
  assert.ok(fam && fam.revoked_at, "the family is revoked");
  assert.ok((await refreshItem(b.json.refresh_token)).revoked_at, "the presented token is revoked");
});

// Breaking it: without the reset on success, the right password's reservation would be
// the 10th count, and the first wrong attempt after it would already be 429 (and the
// RATE# item would still hold 10 after the success instead of being gone).
test("a successful login clears the team+email failure counter", async () => {
  const email = uniqueEmail("clears");
  const pair = await signUp(email);
  assert.equal((await setPassword(pair.access_token, PASSWORD)).status, 200);

  // The counter is a fixed 15-minute window: start well inside one, so a window change
  // cannot reset the counter by itself in the middle of the test.
  const left = 900 - (Math.floor(Date.now() / 1000) % 900);
  if (left < 45) await sleep((left + 1) * 1000);
  // The counter is keyed by team (the hub's team) and the email key, hashed, per window.
  const counterKey = itemKey("login-failures", "--team", "team_abc123", "--email", email);
  const counter = async () => (await ddb("GetItem", { Key: counterKey, ConsistentRead: true })).Item;

  for (let i = 0; i < LOGIN_FAILURES - 1; i++) assertError(await login(email, `wrong-a-${i}-password`), 401, "invalid_credentials");
  assert.equal((await counter()).n.N, String(LOGIN_FAILURES - 1), "every attempt is counted on the team+email counter");
  const ok = await login(email, PASSWORD);
  assert.equal(ok.status, 200, ok.text);
  assert.equal(await counter(), undefined, "the success deleted the counter");

  for (let i = 0; i < LOGIN_FAILURES - 1; i++) {
    const r = await login(email, `wrong-b-${i}-password`);
    assertError(r, 401, "invalid_credentials");
  }
  assert.equal((await counter()).n.N, String(LOGIN_FAILURES - 1));
  // The limit itself is unchanged: the 10th failure is counted, the next attempt is 429.
  assertError(await login(email, "wrong-c-password"), 401, "invalid_credentials");
  assertError(await login(email, PASSWORD), 429, "rate_limited");
});

// Breaking it: if `null` were read as a value, register/magic/refresh would answer 422
// ("must be a string") or act on it (a redirect bound to the link, "both slug and
// team_id given"); PATCH /me would refuse `null` for tos_version instead of clearing it,
// or treat `"email": null` / `"current_password": null` as given.
test("null attributes: absent on register, magic and refresh; on PATCH /me null clears tos_*", async () => {
  // Register: a null team_id and redirect_url are absent — a plain registration, hosted-page link.
  const email = uniqueEmail("nulls");
  const r = await register({ email, slug: "member-academy", team_id: null, redirect_url: null });
  assert.equal(r.status, 202, r.text);
  const mail = await waitForMail(email);
  assert.equal(mail.subject, "Confirm your email for Member Academy");
  const token = tokenFrom(mail);
  assert.ok(mail.body.text.includes(`${API_URL}/m?hub=member-academy&lang=en#token=${token}`), "no redirect bound: the hosted page");
  const c = await consume(token);
  assert.equal(c.status, 200, c.text);
  assert.equal(c.json.redirect_url, null);
  // The same request with a real team_id is "both given": null really was absent.
  assertError(await register({ email: uniqueEmail("both"), slug: "member-academy", team_id: "team_abc123" }), 422, "validation_error", "/data/attributes");

  // Magic: `"slug": null` with a team_id (the README's example), for the member just made.
  const before = (await mails(email)).length;
  assert.equal((await send(magic, { email, slug: null, team_id: "team_abc123", redirect_url: null })).status, 202);
  const signIn = await waitForMail(email, before);
  assert.equal(signIn.subject, "Sign in to Member Academy");
  tokenFrom(signIn);

  // Refresh: a null refresh_token is no token.
  assertError(await call("POST", "/refresh", { body: doc("refresh_requests", { refresh_token: null }) }), 401, "refresh_token_missing");

  // PATCH /me: null clears tos_version (and only it); null email / current_password are absent.
  const access = c.json.access_token;
  const set = await patchMe(access, { tos_accepted_at: "2026-01-02T03:04:05Z", tos_version: "2026-01" });
  assert.equal(set.status, 200, set.text);
  assert.equal(set.json.data.attributes.tos_version, "2026-01");
  const cleared = await patchMe(access, { tos_version: null });
  assert.equal(cleared.status, 200, cleared.text);
  assert.equal(cleared.json.data.attributes.tos_version, null);
  assert.equal(cleared.json.data.attributes.tos_accepted_at, "2026-01-02T03:04:05Z", "an absent attribute is left alone");
  assert.equal((await me(access)).json.data.attributes.tos_version, null, "stored cleared");
  const noEmail = await patchMe(access, { email: null, current_password: null });
  assert.equal(noEmail.status, 200, noEmail.text);
  assert.equal(noEmail.json.data.attributes.email, email);
  assert.equal(noEmail.json.data.attributes.pending_email, null, "no email change started");
  // Whereas a real current_password without email is refused.
  assertError(await patchMe(access, { current_password: "not-null-123" }), 422, "validation_error", "/data/attributes/current_password");
});

// Breaking it: a token pair served as JSON:API, or without `Cache-Control: no-store` /
// `Pragma: no-cache` (a proxy or browser could keep tokens), fails the header checks.
test("the token pair is application/json with Cache-Control: no-store and Pragma: no-cache", async () => {
  const email = uniqueEmail("pair-headers");
  assert.equal((await register({ email, slug: "member-academy" })).status, 202);
  const consumed = await consume(tokenFrom(await waitForMail(email)));
  assert.equal((await setPassword(consumed.json.access_token, PASSWORD)).status, 200);
  const logged = await login(email, PASSWORD);
  const refreshed = kept(await refreshBody(logged.json.refresh_token));
  for (const [name, r] of [["consume", consumed], ["login", logged], ["refresh", refreshed]]) {
    assert.equal(r.status, 200, `${name}: ${r.text}`);
    assert.equal(r.headers.get("content-type"), "application/json", name);
    assert.equal(r.headers.get("cache-control"), "no-store", name);
    assert.equal(r.headers.get("pragma"), "no-cache", name);
    // Plain JSON, not a JSON:API document.
    assert.equal(r.json.data, undefined, name);
    assert.equal(r.json.token_type, "Bearer", name);
    assert.match(r.json.refresh_token, /^[A-Za-z0-9_-]{43}$/, name);
  }
});

// Breaking it: another `typ` (e.g. "JWT"), another algorithm, or a `kid` that is not the
// RFC 7638 thumbprint of the published key (say a random id) fails these checks.
test("access tokens: typ at+jwt, alg RS256 (the default), kid = RFC 7638 thumbprint of the JWKS key, aud names the team", async () => {
  const pair = await signUp(uniqueEmail("kid"));
  const header = headerOf(pair.access_token);
  assert.equal(header.typ, "at+jwt");
  assert.equal(header.alg, "RS256");
  assert.equal(typeof header.kid, "string");
  const claims = JSON.parse(Buffer.from(pair.access_token.split(".")[1], "base64url"));
  assert.deepEqual(claims.aud, ["contact-api", `team:${claims.tid}`]);

  const jwks = await call("GET", "/.well-known/jwks.json");
  assert.equal(jwks.status, 200);
  assert.ok(jwks.json.keys.length >= 2, "the current key and the next one");
  // RFC 7638: the required members in lexicographic order.
  const members = { RSA: ["e", "kty", "n"], EC: ["crv", "kty", "x", "y"], OKP: ["crv", "kty", "x"] };
  const thumbprint = (k) => createHash("sha256").update(JSON.stringify(Object.fromEntries(members[k.kty].map((m) => [m, k[m]])))).digest().toString("base64url");
  for (const k of jwks.json.keys) {
    assert.equal(k.use, "sig");
    assert.ok(["RS256", "ES256", "EdDSA"].includes(k.alg), k.alg);
    for (const priv of ["d", "p", "q", "dp", "dq", "qi"]) assert.ok(!(priv in k), `no private member ${priv}`);
    if (k.kty === "RSA") assert.equal(Buffer.from(k.n, "base64url").length, 256, "2048-bit modulus");
    assert.equal(k.kid, thumbprint(k), "every published kid is its key's thumbprint");
  }
  const jwk = jwks.json.keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, "the token's kid names a published key");
  assert.equal(jwk.kty, "RSA");
  assert.equal(header.kid, thumbprint(jwk));
  // And that key really signed it.
  const [h, p, s] = pair.access_token.split(".");
  const key = createPublicKey({ key: jwk, format: "jwk" });
  assert.ok(verify("sha256", Buffer.from(`${h}.${p}`), key, Buffer.from(s, "base64url")));
  // A refreshed token has the same header.
  const refreshed = kept(await refreshBody(pair.refresh_token));
  assert.deepEqual(headerOf(refreshed.json.access_token), header);
});

// Breaking it: if a team_id request carried no hub, the session's `hid` would be absent
// (or would be the hub the member signed up on, hub_my_hub), and the mail would name the
// team instead of its primary hub.
test("a team_id sign-in names the team's primary hub, and its session's hid is that hub", async () => {
  const email = uniqueEmail("team-hid");
  const first = await signUp(email, { slug: "my-hub" });
  assert.equal(claimsOf(first.access_token).hid, "hub_my_hub");

  const before = (await mails(email)).length;
  assert.equal((await send(magic, { email, team_id: "team_abc123" })).status, 202);
  const mail = await waitForMail(email, before);
  assert.equal(mail.subject, "Sign in to Member Academy");
  const c = await consume(tokenFrom(mail));
  assert.equal(c.status, 200, c.text);
  const claims = claimsOf(c.json.access_token);
  assert.equal(claims.hid, "hub_member_academy", "the team's primary hub");
  assert.equal(claims.tid, "team_abc123");
  assert.equal(claims.sub, claimsOf(first.access_token).sub);
  // The hid lives on in the session: a refresh keeps it.
  const r = kept(await refreshBody(c.json.refresh_token));
  assert.equal(claimsOf(r.json.access_token).hid, "hub_member_academy");

  // A team without a primary hub: the mail names the team, and there is no hid.
  const tag = randomBytes(4).toString("hex");
  const teamId = `team_nohub_${tag}`;
  admin("team", "--id", teamId, "--name", `Hubless ${tag}`);
  const fresh = uniqueEmail("hubless");
  assert.equal((await register({ email: fresh, team_id: teamId })).status, 202);
  const m = await waitForMail(fresh);
  assert.equal(m.subject, `Confirm your email for Hubless ${tag}`);
  const joined = await consume(tokenFrom(m));
  assert.equal(joined.status, 200, joined.text);
  const hubless = claimsOf(joined.json.access_token);
  assert.equal(hubless.tid, teamId);
  assert.equal(hubless.hid, undefined, "no hub, no hid");
});

// Breaking it: if `registration off` were ignored, the new email would get a
// "Confirm your email" mail and the outsider a "Join" mail; if it shut the hub entirely,
// the member would get no sign-in mail. Re-opening the hub shows the same requests do
// send mail when registration is on.
test("a hub with registration off: no registration, no join, but members still sign in", async () => {
  const tag = randomBytes(4).toString("hex");
  const hubId = `hub_closed_${tag}`;
  const slug = `closed-${tag}`;
  const title = `Closed ${tag}`;
  const hubArgs = ["hub", "--id", hubId, "--slug", slug, "--team", "team_abc123", "--title", title];
  admin(...hubArgs, "--registration", "off");

  const member = uniqueEmail("closed-member");
  await signUp(member); // member-academy: team_abc123, the closed hub's team
  const outsider = uniqueEmail("closed-outsider");
  await signUp(outsider, { slug: "other-hub" }); // team_other only
  const fresh = uniqueEmail("closed-new");
  const memberBefore = (await mails(member)).length;
  const outsiderBefore = (await mails(outsider)).length;

  assert.equal((await register({ email: fresh, slug })).status, 202);
  assert.equal((await register({ email: outsider, slug })).status, 202);
  assert.equal((await send(register, { email: member, slug })).status, 202);

  // The member gets a sign-in link for the closed hub.
  const mail = await waitForMail(member, memberBefore);
  assert.equal(mail.subject, `Sign in to ${title}`);
  await mailerIdle();
  assert.equal((await mails(fresh)).length, 0, "no registration mail");
  assert.equal((await mails(outsider)).length, outsiderBefore, "no join mail");
  const c = await consume(tokenFrom(mail));
  assert.equal(c.status, 200, c.text);
  assert.equal(claimsOf(c.json.access_token).hid, hubId);
  assert.equal(claimsOf(c.json.access_token).tid, "team_abc123");

  // The same two requests once registration is on: a registration and a join.
  admin(...hubArgs, "--registration", "on");
  assert.equal((await send(register, { email: fresh, slug })).status, 202);
  const reg = await waitForMail(fresh);
  assert.equal(reg.subject, `Confirm your email for ${title}`);
  tokenFrom(reg);
  assert.equal((await send(register, { email: outsider, slug })).status, 202);
  const join = await waitForMail(outsider, outsiderBefore);
  assert.equal(join.subject, `Join ${title}`);
  tokenFrom(join);
});

// Breaking it: without the future check a far-future time is stored (200); a check
// without the 300 s skew refuses a clock slightly ahead; a null that did not clear would
// leave the old time in place.
test("PATCH /me: tos_accepted_at in the future is 422 (300 s skew allowed); null clears it", async () => {
  const pair = await signUp(uniqueEmail("tos-future"));
  const iso = (secs) => new Date(secs * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
  const now = Math.floor(Date.now() / 1000);

  const accepted = iso(now - 60);
  const ok = await patchMe(pair.access_token, { tos_accepted_at: accepted, tos_version: "v9" });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.data.attributes.tos_accepted_at, accepted);

  const future = await patchMe(pair.access_token, { tos_accepted_at: iso(now + 3600) });
  assertError(future, 422, "validation_error", "/data/attributes/tos_accepted_at");
  assert.equal(errorOf(future).detail, "tos_accepted_at must not be in the future.");
  assert.equal((await me(pair.access_token)).json.data.attributes.tos_accepted_at, accepted, "nothing stored");

  // A client clock a little ahead (within the 300 s skew) is fine.
  const skewed = iso(now + 120);
  const ahead = await patchMe(pair.access_token, { tos_accepted_at: skewed });
  assert.equal(ahead.status, 200, ahead.text);
  assert.equal(ahead.json.data.attributes.tos_accepted_at, skewed);

  const cleared = await patchMe(pair.access_token, { tos_accepted_at: null });
  assert.equal(cleared.status, 200, cleared.text);
  assert.equal(cleared.json.data.attributes.tos_accepted_at, null);
  assert.equal(cleared.json.data.attributes.tos_version, "v9", "only the attribute sent is cleared");
  assert.equal((await me(pair.access_token)).json.data.attributes.tos_accepted_at, null);
});

// Breaking it: an early 409 email_taken (or any other difference from the free-address
// answer) at PATCH /me would tell whoever holds a session which addresses have accounts.
test("an email change to another account's address looks like one to a free address; consume says email_taken", async () => {
  const taken = uniqueEmail("taken-owner");
  const owner = await signUp(taken);
  const pair = await signUp(uniqueEmail("changer"));
  const free = uniqueEmail("free-target");

  const toFree = await patchMe(pair.access_token, { email: free });
  await sleep(2100); // the owner's sign-up started the 2 s cooldown for (team, taken address)
  const ownerBefore = (await mails(taken)).length;
  const toTaken = await patchMe(pair.access_token, { email: taken });
  assert.equal(toFree.status, 200, toFree.text);
  assert.equal(toTaken.status, 200, toTaken.text);
  assert.equal(toTaken.headers.get("content-type"), toFree.headers.get("content-type"));
  assert.equal(toFree.json.data.attributes.pending_email, free);
  assert.equal(toTaken.json.data.attributes.pending_email, taken);
  const without = (r) => ({ ...r.json.data, attributes: { ...r.json.data.attributes, pending_email: null } });
  assert.deepEqual(without(toTaken), without(toFree), "the same answer but for pending_email");

  // The confirmation goes out as for any address; consuming it is where the clash shows.
  const confirmation = await waitForMail(taken, ownerBefore);
  assert.equal(confirmation.subject, "Confirm your new email for Member Academy");
  assertError(await consume(tokenFrom(confirmation)), 409, "email_taken");
  // Nothing moved: both accounts keep their addresses.
  assert.notEqual((await me(pair.access_token)).json.data.attributes.email, taken);
  assert.equal((await me(owner.access_token)).json.data.attributes.email, taken);
});
