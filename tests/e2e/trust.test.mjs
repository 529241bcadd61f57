// Issue 17 ("trust, round two"): the email-change undo chain, a password planted before
// the change, sessions after a confirmed change, and the per-IP code cap's counter. Over
// HTTP against the local stack. The 7-day undo window and revoked-key links are tested
// with injected clocks in the replay (tests/replay.rs scenarios).

import { test } from "node:test";
import assert from "node:assert/strict";
import {
  call, consume, magic, mails, waitForMail, tokenFrom, uniqueEmail, signUp, claimsOf,
  me, patchMe, setPassword, refreshBody, login, send, mailWithSubject, assertError, recordSecret,
  sleep, waitForLink, consumeCode, codeFrom, signIn,
} from "./helpers.mjs";

const PASSWORD = "harbour-violet-engine-42";
recordSecret(PASSWORD);
const CHANGING = /email address is being changed/;

/** Confirms a pending change from the new mailbox; returns the email-change session. */
async function confirm(newEmail) {
  const c = await consume(tokenFrom(await waitForLink(newEmail)));
  assert.equal(c.status, 200, c.text);
  return c.json;
}

/** Every undo mail `to` has received. */
async function undoMails(to) {
  return (await mails(to)).filter((m) => CHANGING.test(m.subject));
}

/** Waits until `to` has `n` undo mails; returns the newest undo token. */
async function nthUndo(to, n) {
  for (let i = 0; i < 150; i++) {
    const list = await undoMails(to);
    if (list.length >= n) return tokenFrom(list[n - 1]);
    await sleep(100);
  }
  throw new Error(`no undo mail #${n} for ${to}`);
}

test("item 1: a session signed in at the changed-to address cannot move the account on while the undo is open", async () => {
  const victim = uniqueEmail("chain-victim");
  const x1 = uniqueEmail("chain-x1");
  const x2 = uniqueEmail("chain-x2");
  const stolen = await signUp(victim); // a fresh session in the attacker's hands
  assert.equal((await patchMe(stolen.access_token, { email: x1 })).status, 200);
  const u1 = await nthUndo(victim, 1);
  await confirm(x1);
  // The attacker signs in at X1 (a fresh link sign-in) and asks for X1 -> X2.
  const atX1 = await signIn(x1);
  const refused = await patchMe(atX1.access_token, { email: x2 });
  assertError(refused, 403, "reauthentication_required");
  assert.match(refused.json.errors[0].detail, /changed in the last 7 days/);
  assert.equal((await me(atX1.access_token)).json.data.attributes.pending_email, null, "nothing pending");
  assert.equal((await mails(x2)).length, 0, "no mail to X2");
  assert.equal((await undoMails(x1)).length, 0, "no undo link ever goes to X1");
  // The victim's undo restores the address and ends the attacker's sessions.
  const u = await consume(u1);
  assert.equal(u.status, 200, u.text);
  assert.deepEqual(u.json, { undone: "email_change", password_removed: false, redirect_url: null });
  assertError(await me(atX1.access_token), 401, "unauthorized");
  assertError(await refreshBody(atX1.refresh_token), 401, "refresh_token_invalid");
  const back = await signIn(victim);
  assert.equal((await me(back.access_token)).json.data.attributes.email, victim);
});

test("item 1: every undo link of a chain goes to its origin and restores it; the first undo voids the others", async () => {
  const origin = uniqueEmail("chain-origin");
  const x1 = uniqueEmail("chain-a1");
  const x2 = uniqueEmail("chain-a2");
  const s = await signUp(origin);
  // Two requests of one chain (the second while the account is still on the origin, so
  // the session signed in at the origin may make it); both undo links go to the origin.
  assert.equal((await patchMe(s.access_token, { email: x1 })).status, 200);
  const u1 = await nthUndo(origin, 1);
  await sleep(2100); // the test stack's per-address mail cooldown
  assert.equal((await patchMe(s.access_token, { email: x2 })).status, 200);
  const u2 = await nthUndo(origin, 2);
  await confirm(x2);
  for (const addr of [x1, x2]) assert.equal((await undoMails(addr)).length, 0, `an undo link went to ${addr}`);
  // The older undo link of the chain restores the origin after the newer change.
  const u = await consume(u1);
  assert.equal(u.status, 200, u.text);
  assert.equal(u.json.password_removed, false);
  // The first undo ended the chain: the other link is dead, and so is a second use.
  for (const t of [u2, u1]) {
    const r = await consume(t);
    assertError(r, 401, "magic_link_invalid");
  }
  const back = await signIn(origin);
  assert.equal((await me(back.access_token)).json.data.attributes.email, origin);
});

test("item 1: an undo while a newer change is pending restores the origin and kills the pending confirmation", async () => {
  const origin = uniqueEmail("pend-origin");
  const x1 = uniqueEmail("pend-x1");
  const x2 = uniqueEmail("pend-x2");
  const s = await signUp(origin);
  assert.equal((await patchMe(s.access_token, { email: x1 })).status, 200);
  const u1 = await nthUndo(origin, 1);
  const first = tokenFrom(await waitForLink(x1));
  await sleep(2100);
  assert.equal((await patchMe(s.access_token, { email: x2 })).status, 200);
  await nthUndo(origin, 2);
  const pending = tokenFrom(await waitForLink(x2));
  const u = await consume(u1);
  assert.equal(u.status, 200, u.text);
  for (const t of [pending, first]) assertError(await consume(t), 401, "magic_link_invalid");
  assertError(await me(s.access_token), 401, "unauthorized");
  const back = await signIn(origin);
  const attrs = (await me(back.access_token)).json.data.attributes;
  assert.equal(attrs.email, origin);
  assert.equal(attrs.pending_email, null);
});

test("item 1 (review): a sign-in link or code mailed to the changed-to address dies with the undo", async () => {
  const victim = uniqueEmail("kept-victim");
  const x1 = uniqueEmail("kept-x1");
  const stolen = await signUp(victim);
  assert.equal((await patchMe(stolen.access_token, { email: x1 })).status, 200);
  const undo = await nthUndo(victim, 1);
  await confirm(x1);
  // The attacker keeps a sign-in mail for X1 unused, then the victim undoes.
  const before = (await mails(x1)).length;
  assert.equal((await send(magic, { email: x1, slug: "member-academy" })).status, 202);
  const kept = await waitForLink(x1, before);
  assert.equal((await consume(undo)).status, 200);
  const byCode = await consumeCode({ email: x1, code: codeFrom(kept), slug: "member-academy" });
  assertError(byCode, 401, "magic_link_invalid");
  const byLink = await consume(tokenFrom(kept));
  assertError(byLink, 401, "magic_link_invalid");
  assert.equal(byLink.json.errors[0].meta.reason, "superseded");
  // And a link to the old address, mailed before a confirmed change, dies with the change.
  const owner = uniqueEmail("kept-owner");
  const next = uniqueEmail("kept-next");
  const s = await signUp(owner);
  const sent = (await mails(owner)).length;
  assert.equal((await send(magic, { email: owner, slug: "member-academy" })).status, 202);
  const old = await waitForLink(owner, sent);
  assert.equal((await patchMe(s.access_token, { email: next })).status, 200);
  await confirm(next);
  assertError(await consume(tokenFrom(old)), 401, "magic_link_invalid");
});

test("item 2: a password planted by a stolen session survives neither the undo nor a login with it", async () => {
  const victim = uniqueEmail("plant-victim");
  const x1 = uniqueEmail("plant-x1");
  const stolen = await signUp(victim);
  // Planted, then a later session signed in with that password asks for the change (its
  // sign-in is after the password: only the 7-day rule catches it).
  assert.equal((await setPassword(stolen.access_token, PASSWORD)).status, 200);
  await sleep(1100);
  const viaPassword = await login(victim, PASSWORD);
  assert.equal(viaPassword.status, 200, viaPassword.text);
  assert.equal((await patchMe(viaPassword.json.access_token, { email: x1 })).status, 200);
  const undo = await nthUndo(victim, 1);
  await confirm(x1);
  // The planted password is "from inside the chain": it cannot move the account on either.
  const atX1 = await login(x1, PASSWORD);
  assert.equal(atX1.status, 200, atX1.text);
  assertError(await patchMe(atX1.json.access_token, { email: uniqueEmail("plant-x2") }), 403, "reauthentication_required");
  assertError(
    await patchMe(atX1.json.access_token, { email: uniqueEmail("plant-x3"), current_password: PASSWORD }),
    403, "reauthentication_required",
  );
  const u = await consume(undo);
  assert.equal(u.status, 200, u.text);
  assert.deepEqual(u.json, { undone: "email_change", password_removed: true, redirect_url: null });
  assertError(await login(victim, PASSWORD), 401, "invalid_credentials");
  const back = await signIn(victim);
  assert.equal((await me(back.access_token)).json.data.attributes.has_password, false);
});

test("item 3: confirming an email change ends every other session and tells the new address whose account it is", async () => {
  const owner = uniqueEmail("conf-owner");
  const next = uniqueEmail("conf-new");
  const a = await signUp(owner);
  const b = await signIn(owner); // another device
  assert.equal((await patchMe(a.access_token, { email: next })).status, 200);
  const switched = await confirm(next);
  // Both earlier sessions are over (access and refresh); the confirming one works.
  for (const s of [a, b]) {
    assertError(await me(s.access_token), 401, "unauthorized");
    assertError(await refreshBody(s.refresh_token), 401, "refresh_token_invalid");
  }
  const mine = await me(switched.access_token);
  assert.equal(mine.status, 200, mine.text);
  assert.equal(mine.json.data.attributes.email, next);
  assert.equal(claimsOf(switched.access_token).tv, claimsOf(a.access_token).tv + 1);
  const notice = await mailWithSubject(next, /Your address is now on/);
  assert.match(notice.body.text, /Your address is now on this account/);
  assert.match(notice.body.text, /Member Academy/, "the notice names the account's hubs");
  assert.match(notice.body.html, /Member Academy/);
});

test("item 3: an undo after the confirmation also ends the confirming session", async () => {
  const owner = uniqueEmail("conf-undo");
  const next = uniqueEmail("conf-undo-new");
  const a = await signUp(owner);
  assert.equal((await patchMe(a.access_token, { email: next })).status, 200);
  const undo = await nthUndo(owner, 1);
  const switched = await confirm(next);
  assert.equal((await consume(undo)).status, 200);
  assertError(await me(switched.access_token), 401, "unauthorized");
  assertError(await refreshBody(switched.refresh_token), 401, "refresh_token_invalid");
});

test("item 6: redirect_url paths that browsers read as another host are refused with 422", async () => {
  for (const redirect_url of ["//evil.example/cb", "/@evil.example", "/\\evil.example", "https:evil.example"]) {
    const r = await call("POST", "/magic", {
      body: { data: { type: "magic_link_requests", attributes: { email: uniqueEmail("redir"), slug: "member-academy", redirect_url } } },
    });
    assert.equal(r.status, 422, `${redirect_url}: ${r.text}`);
    assert.equal(r.json.errors[0].source.pointer, "/data/attributes/redirect_url");
  }
});
