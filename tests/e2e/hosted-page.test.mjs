// The hosted sign-in page `GET /m`, driven in real headless Chromium: the emailed link
// `<API>/m#token=…` must strip the token from the address bar, must NOT consume the token
// on load (mail scanners open links), and must consume it exactly once on the button press.
// `/m?hub=<slug>` is a whole hosted sign-in: email, then the link (bound to this browser by
// a PKCE verifier in localStorage) or the 6-digit code. Every state is screenshotted into
// $SCREENSHOT_DIR (default .dev/screenshots) as hosted-<state>.png, each after asserting
// that the intended section is the only one visible.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { createHash } from "node:crypto";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { API_URL, PREFIX, TABLE, uniqueEmail, register, waitForMail, waitForLink, mails, tokenFrom, codeFrom, consume, recordSecret, call, doc, bearer, signUp, send, magic, ddb, itemKey, mailWithSubject } from "./helpers.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const SCREENSHOT = join(ROOT, ".dev", "hosted-page.png");
// resolve, not join: an absolute SCREENSHOT_DIR is used as given, a relative one under ROOT.
const SCREENSHOT_DIR = resolve(ROOT, process.env.SCREENSHOT_DIR || ".dev/screenshots");
const UI_TIMEOUT = 10000; // every Playwright wait fails after this, so a broken page never hangs
const TEST_TIMEOUT = 40000; // register + mail delivery + page
// A mail scanner's visit is judged on the page's own clock (Playwright's fake timers,
// installed on the context before the page loads): `scannerVisit` fires every timer the
// page set for the next 10 minutes of page time at once, with no wall-clock wait, and the
// tests then require that no consume request was made without the button (10 minutes:
// within the 15 of a pending sign-in, so the page's own state stays valid).
const SCANNER_PAGE_MS = 10 * 60 * 1000;
const COOLDOWN = 2100; // the test stack's per-address send cooldown (tools/test.mjs: 2 s)
const HUB = "my-hub";
// The page names a hub by its title (or branded display name), not its slug.
const HUB_TITLE = "My Hub";
const PENDING_KEY = "contact-auth.pending";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let browser;

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
    headless: true,
    timeout: 20000,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  if (browser) await browser.close();
});

/**
 * A new page in `context` that records every request (with its body), page error and
 * console message. The bodies stay in this process: they are only compared, never printed.
 */
async function trackedPage(context) {
  const page = await context.newPage();
  const requests = [];
  const errors = [];
  const consoleLines = [];
  page.on("request", (req) => requests.push({ method: req.method(), url: req.url(), body: req.postData() }));
  page.on("pageerror", (err) => errors.push(err.message));
  page.on("console", (msg) => consoleLines.push(msg.text()));
  const consumeRequests = () => requests.filter((r) => r.url.includes("/magic/consume"));
  const apiRequests = (path) => requests.filter((r) => r.method === "POST" && new URL(r.url).pathname === `${PREFIX}${path}`);
  return { context, page, requests, errors, consoleLines, consumeRequests, apiRequests };
}

/** Lets the page's timers run for 10 minutes of page time (see SCANNER_PAGE_MS). */
async function scannerVisit(page) {
  await page.clock.runFor(SCANNER_PAGE_MS);
}

/** A fresh page in its own context (its own localStorage: another browser). */
async function openPage() {
  const context = await browser.newContext();
  context.setDefaultTimeout(UI_TIMEOUT);
  context.setDefaultNavigationTimeout(UI_TIMEOUT);
  return trackedPage(context);
}

/** Registers a fresh email on the seeded hub and returns it with the token from its mail. */
async function freshLink() {
  const email = uniqueEmail("page");
  const already = (await mails(email)).length;
  const r = await register({ email, slug: "member-academy" });
  assert.equal(r.status, 202, `register answered ${r.status}: ${r.text}`);
  const token = tokenFrom(await waitForMail(email, already));
  return { email, token };
}

/** Section ids that are currently visible (not `hidden`). */
function visibleSections(page) {
  return page.evaluate(() => [...document.querySelectorAll("main > section")].filter((s) => !s.hidden).map((s) => s.id));
}

/**
 * Saves `hosted-<state>.png` after asserting that `section` is the only visible section, so
 * an error page can never pass for the intended state.
 */
async function screenshot(page, state, section) {
  assert.deepEqual(await visibleSections(page), [section], `screenshot ${state}: only #${section} visible`);
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOT_DIR, `hosted-${state}.png`), fullPage: true });
}

/** The pending same-browser entry in localStorage (parsed), or null. */
async function pendingOf(page) {
  const raw = await page.evaluate((key) => window.localStorage.getItem(key), PENDING_KEY);
  return raw ? JSON.parse(raw) : null;
}

/** The id of the section whose `<h1>` has the focus (null if focus is elsewhere). */
function focusedHeadingSection(page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    return el && el.tagName === "H1" ? el.closest("section").id : null;
  });
}

/** The exact hosted-page link of a sign-in mail (`<API>/m?[hub=…&]lang=…#token=…`); records the token. */
function linkFrom(mail) {
  tokenFrom(mail);
  const m = /(https?:\/\/[^\s"<>]+\/m(?:\?[^\s"<>#]*)?#token=[A-Za-z0-9_-]{43}(?:&[a-z_]+=[A-Za-z0-9_.-]+)*)/.exec(mail.body.text);
  assert.ok(m, "no hosted-page link in the mail");
  return m[1];
}

/** A 6-digit code that is not `code`. */
const wrongCode = (code) => String((Number(code) + 1) % 1000000).padStart(6, "0");

/**
 * Opens `/m?hub=my-hub` in `tracked`, submits `email` with the Enter key and waits for the
 * `check` step. Returns the pending entry and the mail that request sent.
 */
async function startSignIn(tracked, email) {
  const { page } = tracked;
  const already = (await mails(email)).length;
  const res = await page.goto(`${API_URL}/m?hub=${HUB}`, { waitUntil: "load" });
  assert.equal(res.status(), 200);
  await page.locator("#start").waitFor({ state: "visible" });
  await page.locator("#email").fill(email);
  await page.keyboard.press("Enter");
  await page.locator("#check").waitFor({ state: "visible" });
  assert.ok((await page.locator("#check-email").textContent()).includes(email), "the check step names the address");
  const pending = await pendingOf(page);
  assert.ok(pending, "no pending entry after the request");
  recordSecret(pending.verifier);
  const mail = await waitForMail(email, already);
  return { pending, mail };
}

/** Asserts the request body of the last `POST path` carried the S256 challenge of `verifier`. */
function assertChallenge(tracked, path, type, verifier, attributes) {
  const sent = tracked.apiRequests(path);
  assert.ok(sent.length >= 1, `no POST ${path}`);
  const body = JSON.parse(sent[sent.length - 1].body);
  assert.equal(body.data.type, type);
  const a = body.data.attributes;
  for (const [k, v] of Object.entries(attributes)) assert.equal(a[k], v, `${path} ${k}`);
  assert.equal(a.code_challenge_method, "S256");
  assert.equal(a.code_challenge, createHash("sha256").update(verifier).digest("base64url"), `${path}: the challenge is S256 of the stored verifier`);
}

/** No secret in the page's text, markup or console output. */
async function assertNoSecrets(tracked, secrets) {
  const html = await tracked.page.content();
  for (const s of secrets.filter(Boolean)) {
    assert.ok(!html.includes(s), "a secret is in the page's markup");
    assert.ok(!tracked.consoleLines.some((l) => l.includes(s)), "a secret is in the console output");
    assert.ok(!tracked.page.url().includes(s), "a secret is in the URL");
  }
}

test("a real link: token stripped from the URL, not consumed on load, consumed once by the button", { timeout: TEST_TIMEOUT }, async () => {
  const { email, token } = await freshLink();
  const { context, page, errors, consumeRequests } = await openPage();
  try {
    await context.clock.install();
    const res = await page.goto(`${API_URL}/m#token=${token}`, { waitUntil: "load" });
    assert.equal(res.status(), 200);

    // The fragment (and so the token) is gone from the address bar.
    const url = page.url();
    assert.ok(!url.includes("#"), `URL still has a fragment: ${url}`);
    assert.ok(!url.includes(token), "URL still contains the token");
    assert.equal(url, `${API_URL}/m`);

    await page.locator("#ready").waitFor({ state: "visible" });
    assert.ok(await page.locator("#signin").isVisible());

    // Loading (what a mail scanner does) must not consume the token.
    await scannerVisit(page);
    assert.deepEqual(await visibleSections(page), ["ready"]);
    assert.equal(consumeRequests().length, 0, "the page consumed the token on load");

    await page.locator("#signin").click();
    await page.locator("#done").waitFor({ state: "visible" });
    assert.deepEqual(await visibleSections(page), ["done"]);
    assert.equal((await page.locator("#who").textContent()).trim(), email);
    assert.equal(consumeRequests().length, 1, "exactly one consume request on the button press");
    assert.equal(consumeRequests()[0].method, "POST");
    assert.ok(!page.url().includes(token), "URL contains the token after sign-in");

    mkdirSync(dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    // The page offers a first password: a weak one is refused with the API's detail,
    // a good one is set.
    assert.ok(await page.locator("#password-offer").isVisible());
    await page.locator("#password").fill("12345678");
    await page.locator("#set-password").click();
    await page.locator("#password-result.error").waitFor({ state: "visible" });
    assert.match(await page.locator("#password-result").textContent(), /too common/);
    recordSecret("hosted-page-password-61");
    await page.locator("#password").fill("hosted-page-password-61");
    await page.locator("#set-password").click();
    await page.locator("#password-result.ok").waitFor({ state: "visible" });
    assert.equal((await page.locator("#password-result").textContent()).trim(), "Password set.");

    assert.deepEqual(errors, [], "page errors");
  } finally {
    await context.close();
  }

  // The button press used the token: it cannot be consumed again.
  const again = await consume(token);
  assert.equal(again.status, 401, `second consume answered ${again.status}: ${again.text}`);
});

test("scanner safety: opening the link without pressing the button leaves the token usable", { timeout: TEST_TIMEOUT }, async () => {
  const { token } = await freshLink();
  const { context, page, consumeRequests } = await openPage();
  try {
    await context.clock.install();
    await page.goto(`${API_URL}/m#token=${token}`, { waitUntil: "load" });
    await page.locator("#ready").waitFor({ state: "visible" });
    await scannerVisit(page);
    assert.equal(consumeRequests().length, 0, "the page consumed the token on load");
  } finally {
    await context.close();
  }

  const r = await consume(token);
  assert.equal(r.status, 200, `consume after a page load answered ${r.status}: ${r.text}`);
  assert.ok(r.json && r.json.access_token, "consume returned no access token");
});

test("an invalid token shows the invalid section after the button press", { timeout: TEST_TIMEOUT }, async () => {
  const { context, page, errors, consumeRequests } = await openPage();
  try {
    await page.goto(`${API_URL}/m#token=${"A".repeat(43)}`, { waitUntil: "load" });
    assert.ok(!page.url().includes("#"), `URL still has a fragment: ${page.url()}`);
    await page.locator("#ready").waitFor({ state: "visible" });
    await page.locator("#signin").click();
    await page.locator("#invalid").waitFor({ state: "visible" });
    assert.deepEqual(await visibleSections(page), ["invalid"]);
    assert.match(await page.locator("#invalid").innerText(), /invalid/i);
    assert.equal(consumeRequests().length, 1);
    assert.deepEqual(errors, [], "page errors");
  } finally {
    await context.close();
  }
});

test("without a token the page asks to open the link from the email", { timeout: TEST_TIMEOUT }, async () => {
  const { context, page, errors, consumeRequests } = await openPage();
  try {
    const res = await page.goto(`${API_URL}/m`, { waitUntil: "load" });
    assert.equal(res.status(), 200);
    await page.locator("#missing").waitFor({ state: "visible" });
    assert.deepEqual(await visibleSections(page), ["missing"]);
    await sleep(300);
    assert.equal(consumeRequests().length, 0);
    await screenshot(page, "missing", "missing");
    assert.deepEqual(errors, [], "page errors");
  } finally {
    await context.close();
  }
});

test("the undo link of an email-change notice: the page names the action, undoes on the button press, signs everyone out", { timeout: TEST_TIMEOUT }, async () => {
  const { email, token } = await freshLink();
  const pair = await consume(token);
  assert.equal(pair.status, 200);
  const before = (await mails(email)).length;
  const newAddress = uniqueEmail("moved");
  const patched = await call("PATCH", "/me", { headers: bearer(pair.json.access_token), body: doc("contacts", { email: newAddress }) });
  assert.equal(patched.status, 200, patched.text);
  const notice = await waitForMail(email, before);
  const m = /(https?:\/\/\S+\/m(?:\?[^\s#]*)?#token=[A-Za-z0-9_-]{43}&action=undo)/.exec(notice.body.text);
  assert.ok(m, `no undo link in: ${notice.body.text}`);
  tokenFrom(notice);
  const { context, page, errors, consumeRequests } = await openPage();
  try {
    await context.clock.install();
    await page.goto(m[1], { waitUntil: "load" });
    assert.equal(page.url(), m[1].split("#")[0], "the fragment (token) is stripped; the query (language) stays");
    assert.equal(page.url(), `${API_URL}/m?lang=en`);
    await page.locator("#ready").waitFor({ state: "visible" });
    assert.equal((await page.locator("#signin").textContent()).trim(), "Undo the change");
    await scannerVisit(page);
    assert.equal(consumeRequests().length, 0, "the page used the undo link on load");
    await page.locator("#signin").click();
    await page.locator("#undone").waitFor({ state: "visible" });
    assert.deepEqual(await visibleSections(page), ["undone"]);
    // No password was set, so none was removed, and the page does not say so.
    assert.equal(await page.locator("#undone-password").isVisible(), false);
    assert.deepEqual(errors, [], "page errors");
  } finally {
    await context.close();
  }
  const me = await call("GET", "/me", { headers: bearer(pair.json.access_token) });
  assert.equal(me.status, 401, "the undo ended every session");
});

test("an abandoned pending sign-in is removed on any load once its time is over; a live one stays", { timeout: TEST_TIMEOUT }, async () => {
  const { context, page, errors } = await openPage();
  try {
    await page.goto(`${API_URL}/m`, { waitUntil: "load" });
    const put = (expires) => page.evaluate(([key, expires]) => window.localStorage.setItem(key, JSON.stringify({
      verifier: "v".repeat(43), hub: "my-hub", email: "abandoned@example.com", expires,
    })), [PENDING_KEY, expires]);
    const stored = () => page.evaluate((key) => window.localStorage.getItem(key), PENDING_KEY);
    // Still live: a load that is not a sign-in (no token, no hub) leaves it.
    await put(Date.now() + 60_000);
    await page.goto(`${API_URL}/m`, { waitUntil: "load" });
    await page.locator("#missing").waitFor({ state: "visible" });
    assert.notEqual(await stored(), null, "a live pending sign-in was removed");
    // Past its 15 minutes: the same load removes it.
    await put(Date.now() - 1);
    await page.goto(`${API_URL}/m`, { waitUntil: "load" });
    await page.locator("#missing").waitFor({ state: "visible" });
    assert.equal(await stored(), null, "an abandoned pending sign-in was left behind");
    assert.deepEqual(errors, [], "page errors");
  } finally {
    await context.close();
  }
});

test("an invalid hub in the query is not a sign-in form: the page asks for the link", { timeout: TEST_TIMEOUT }, async () => {
  const { context, page, errors, requests } = await openPage();
  try {
    await page.goto(`${API_URL}/m?hub=${encodeURIComponent('"><img src=x>')}`, { waitUntil: "load" });
    await page.locator("#missing").waitFor({ state: "visible" });
    assert.deepEqual(await visibleSections(page), ["missing"]);
    assert.equal(requests.filter((r) => r.method === "POST").length, 0);
    assert.deepEqual(errors, [], "page errors");
  } finally {
    await context.close();
  }
});

test("hosted sign-in by code: /m?hub=…, email and Enter, a wrong code is refused in place, the mailed code signs in", { timeout: TEST_TIMEOUT }, async () => {
  const email = uniqueEmail("hosted");
  const tracked = await openPage();
  const { context, page, errors } = tracked;
  try {
    const res = await page.goto(`${API_URL}/m?hub=${HUB}`, { waitUntil: "load" });
    assert.equal(res.status(), 200);
    await page.locator("#start").waitFor({ state: "visible" });
    assert.equal((await page.locator("#start-hub").textContent()).trim(), HUB_TITLE);
    // Every input has a label.
    for (const id of ["email", "code", "resend-email", "password"]) {
      assert.equal(await page.locator(`label[for="${id}"]`).count(), 1, `#${id} has a label`);
    }
    await screenshot(page, "start", "start");

    const already = (await mails(email)).length;
    await page.locator("#email").fill(email);
    await page.keyboard.press("Enter"); // the keyboard submits the form
    await page.locator("#check").waitFor({ state: "visible" });
    assert.equal(await focusedHeadingSection(page), "check", "focus moves to the new step's heading");
    assert.ok((await page.locator("#check-email").textContent()).includes(email));

    // The pending entry: a 43-character verifier for this hub and address, kept for two
    // link lifetimes (30 minutes: a link mailed late in a crowd still finds it).
    const pending = await pendingOf(page);
    assert.ok(pending, "no pending entry");
    recordSecret(pending.verifier);
    assert.match(pending.verifier, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(pending.hub, HUB);
    assert.equal(pending.email, email);
    const left = pending.expires - Date.now();
    assert.ok(left > 29 * 60 * 1000 && left <= 30 * 60 * 1000, `expires in ${left} ms`);
    assert.match(await page.locator("#check-text").textContent(), /on its way/, "the check step says the link is on its way");
    assertChallenge(tracked, "/register", "register_requests", pending.verifier, { email, slug: HUB });
    assert.equal(tracked.consumeRequests().length, 0);
    await screenshot(page, "check", "check");

    const mail = await waitForMail(email, already);
    const code = codeFrom(mail);

    // A wrong code: the page stays on `check` and says so in the form's status region.
    await page.locator("#code").fill(wrongCode(code));
    await page.locator("#verify").click();
    await page.locator("#code-status.error").waitFor({ state: "visible" });
    assert.match(await page.locator("#code-status").textContent(), /not right/);
    assert.equal(await page.locator("#code-status").getAttribute("aria-live"), "polite");
    assert.equal(await page.locator("#code").getAttribute("aria-invalid"), "true");
    assert.ok(await page.locator("#verify").isEnabled(), "the button is enabled again after the answer");
    await screenshot(page, "check-wrong-code", "check");

    // The code as the mail shows it ("123 456"); the page sends the six digits.
    await page.locator("#code").fill(`${code.slice(0, 3)} ${code.slice(3)}`);
    await page.keyboard.press("Enter");
    await page.locator("#done").waitFor({ state: "visible" });
    assert.equal((await page.locator("#who").textContent()).trim(), email);
    assert.equal((await page.locator("#hub-name").textContent()).trim(), HUB_TITLE);
    assert.equal(await focusedHeadingSection(page), "done");

    const consumes = tracked.consumeRequests();
    assert.equal(consumes.length, 2, "one wrong and one right code");
    const sent = JSON.parse(consumes[1].body).data.attributes;
    assert.deepEqual(sent, { email, code, slug: HUB, code_verifier: pending.verifier });
    assert.equal(await pendingOf(page), null, "the pending entry is removed after the sign-in");
    await assertNoSecrets(tracked, [pending.verifier, code]);
    await screenshot(page, "done", "done");
    assert.deepEqual(errors, [], "page errors");
  } finally {
    await context.close();
  }
});

test("same browser: the mailed link opened in a new tab uses the pending verifier and signs in", { timeout: TEST_TIMEOUT }, async () => {
  const email = uniqueEmail("hosted-tab");
  const first = await openPage();
  try {
    const { pending, mail } = await startSignIn(first, email);
    assertChallenge(first, "/register", "register_requests", pending.verifier, { email, slug: HUB });
    const link = linkFrom(mail);
    const token = tokenFrom(mail);
    assert.match(link, new RegExp(`/m\\?hub=${HUB}&lang=en#token=`), "a hub's mail link names the hub (and the mail's language) in the query, the token in the fragment");

    // The mail link opens in a new tab of the same browser (same context: same localStorage).
    await first.context.clock.install();
    const tab = await trackedPage(first.context);
    await tab.page.goto(link, { waitUntil: "load" });
    assert.equal(tab.page.url(), `${API_URL}/m?hub=${HUB}&lang=en`, "the fragment is stripped at once");
    await tab.page.locator("#ready").waitFor({ state: "visible" });
    await scannerVisit(tab.page);
    assert.equal(tab.consumeRequests().length, 0, "the page consumed the token on load");
    await screenshot(tab.page, "ready", "ready");

    await tab.page.locator("#signin").click();
    await tab.page.locator("#done").waitFor({ state: "visible" });
    assert.equal((await tab.page.locator("#who").textContent()).trim(), email);
    assert.equal((await tab.page.locator("#hub-name").textContent()).trim(), HUB_TITLE);
    assert.equal(tab.consumeRequests().length, 1);
    assert.deepEqual(JSON.parse(tab.consumeRequests()[0].body).data.attributes, { token, code_verifier: pending.verifier });
    assert.equal(await pendingOf(tab.page), null, "the pending entry is removed after the sign-in");
    await assertNoSecrets(tab, [token, pending.verifier]);
    assert.deepEqual(tab.errors, [], "page errors (link tab)");
    assert.deepEqual(first.errors, [], "page errors (first tab)");
  } finally {
    await first.context.close();
  }
});

test("another browser: the link is refused there with the reason, the code still signs in the first browser", { timeout: TEST_TIMEOUT }, async () => {
  const email = uniqueEmail("hosted-other");
  const first = await openPage();
  const other = await openPage();
  try {
    const { pending, mail } = await startSignIn(first, email);
    const link = linkFrom(mail);
    const code = codeFrom(mail);

    // A fresh context is another browser: no pending entry, so no verifier to prove it.
    await other.page.goto(link, { waitUntil: "load" });
    await other.page.locator("#ready").waitFor({ state: "visible" });
    await other.page.locator("#signin").click();
    await other.page.locator("#invalid").waitFor({ state: "visible" });
    assert.equal(await focusedHeadingSection(other.page), "invalid");
    const reason = await other.page.locator("#invalid-reason").textContent();
    assert.match(reason, /requested in another browser/);
    assert.match(reason, /type the code/);
    assert.equal(JSON.parse(other.consumeRequests()[0].body).data.attributes.code_verifier, undefined, "the other browser has no verifier to send");
    assert.ok(await other.page.locator("#resend-form").isVisible(), "the hub is known: a new link can be asked for here");
    await screenshot(other.page, "invalid-verifier-mismatch", "invalid");
    assert.deepEqual(other.errors, [], "page errors (other browser)");

    // Back in the first browser the code from the same mail still works.
    await first.page.locator("#code").fill(code);
    await first.page.locator("#verify").click();
    await first.page.locator("#done").waitFor({ state: "visible" });
    assert.equal((await first.page.locator("#who").textContent()).trim(), email);
    assert.equal(JSON.parse(first.consumeRequests()[0].body).data.attributes.code_verifier, pending.verifier);
    assert.equal(await pendingOf(first.page), null);
    assert.deepEqual(first.errors, [], "page errors (first browser)");
  } finally {
    await other.context.close();
    await first.context.close();
  }
});

test("a used link says so and offers a new one: the resend form mails a new link and shows the code step", { timeout: TEST_TIMEOUT }, async () => {
  const email = uniqueEmail("hosted-used");
  const before = (await mails(email)).length;
  const r = await register({ email, slug: HUB });
  assert.equal(r.status, 202, `register answered ${r.status}: ${r.text}`);
  const first = await waitForMail(email, before);
  const link = linkFrom(first);
  const token = tokenFrom(first);
  assert.equal((await consume(token)).status, 200, "the link is used once through the API");

  const tracked = await openPage();
  const { context, page, errors } = tracked;
  try {
    await page.goto(link, { waitUntil: "load" });
    await page.locator("#ready").waitFor({ state: "visible" });
    await page.locator("#signin").click();
    await page.locator("#invalid").waitFor({ state: "visible" });
    assert.match(await page.locator("#invalid-reason").textContent(), /already used/);
    assert.ok(await page.locator("#resend-form").isVisible(), "the resend form is offered");
    assert.ok(!(await page.locator("#resend-elsewhere").isVisible()));
    await screenshot(page, "invalid-used", "invalid");

    await sleep(COOLDOWN); // since the register request above
    const count = (await mails(email)).length;
    await page.locator("#resend-email").fill(email);
    await page.keyboard.press("Enter");
    await page.locator("#check").waitFor({ state: "visible" });
    assert.ok((await page.locator("#check-email").textContent()).includes(email));
    const pending = await pendingOf(page);
    assert.ok(pending, "the resend stored a new pending entry");
    recordSecret(pending.verifier);
    assert.equal(pending.hub, HUB);
    assertChallenge(tracked, "/magic", "magic_link_requests", pending.verifier, { email, slug: HUB });

    const fresh = await waitForMail(email, count);
    const freshToken = tokenFrom(fresh);
    assert.notEqual(freshToken, token, "a new link");
    assert.deepEqual(errors, [], "page errors");
  } finally {
    await context.close();
  }
});

test("after sign-in the page lists the member's sessions; End ends another one (its tokens die), Sign out ends this one", { timeout: TEST_TIMEOUT * 2 }, async () => {
  // One session signed in through the API (another device), then this browser by link.
  const email = uniqueEmail("sessions-page");
  const other = await signUp(email);
  const before = (await mails(email)).length;
  const r = await send(magic, { email, slug: "member-academy" });
  assert.equal(r.status, 202, r.text);
  const token = tokenFrom(await waitForLink(email, before));
  const { context, page, errors } = await openPage();
  try {
    await page.goto(`${API_URL}/m#token=${token}`, { waitUntil: "load" });
    await page.locator("#signin").click();
    await page.locator("#done").waitFor({ state: "visible" });
    await page.locator("#sessions-box").waitFor({ state: "visible" });
    const rows = page.locator("#sessions li");
    assert.equal(await rows.count(), 2);
    // This browser first, marked; the other one after it, with an End button.
    assert.match(await rows.nth(0).textContent(), /\(this browser\)/);
    assert.equal((await rows.nth(0).locator("button").textContent()).trim(), "Sign out");
    assert.equal((await rows.nth(1).locator("button").textContent()).trim(), "End");
    assert.doesNotMatch(await rows.nth(1).textContent(), /this browser/);
    await screenshot(page, "sessions", "done");

    await rows.nth(1).locator("button").click();
    await page.locator("#sessions-status.ok").waitFor({ state: "visible" });
    assert.equal(await page.locator("#sessions li").count(), 1);
    // The ended session's tokens are refused at once, not when they expire.
    assert.equal((await call("GET", "/me", { headers: bearer(other.access_token) })).status, 401);
    const refreshed = await call("POST", "/refresh", { body: doc("refresh_requests", { refresh_token: other.refresh_token }) });
    assert.equal(refreshed.status, 401, refreshed.text);

    // Sign out of this browser: the session list's own button.
    await page.locator("#sessions li button").click();
    await page.waitForFunction(() => document.getElementById("done").hidden);
    assert.deepEqual(errors, [], "page errors");
  } finally {
    await context.close();
  }
});

test("a new device's notice: its \"Not you?\" link opens the page, which ends the sessions only on the button press", { timeout: TEST_TIMEOUT * 2 }, async () => {
  // An account older than a minute (a notice is never for the first sign-in): signed up,
  // then dated back an hour.
  const email = uniqueEmail("not-you");
  const first = await signUp(email);
  const contact = JSON.parse(Buffer.from(first.access_token.split(".")[1], "base64url")).sub;
  await ddb("UpdateItem", {
    TableName: TABLE, Key: itemKey("profile", "--contact", contact),
    UpdateExpression: "SET created_at = :t", ExpressionAttributeValues: { ":t": { N: String(Math.floor(Date.now() / 1000) - 3600) } },
  });
  // A sign-in from a phone: a device this member has not used.
  const before = (await mails(email)).length;
  const r = await send(magic, { email, slug: "member-academy" });
  assert.equal(r.status, 202, r.text);
  const link = tokenFrom(await waitForLink(email, before));
  const phone = await call("POST", "/magic/consume", {
    body: doc("magic_link_consumes", { token: link }),
    headers: { "User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1" },
  });
  assert.equal(phone.status, 200, phone.text);
  recordSecret(phone.json.access_token);
  recordSecret(phone.json.refresh_token);
  const notice = await mailWithSubject(email, /New sign-in/);
  assert.match(notice.body.text, /Safari on iPhone/);
  assert.match(notice.body.text, /#token=[A-Za-z0-9_-]{43}&action=end-sessions/);
  const token = tokenFrom(notice);

  const { context, page, errors, consumeRequests } = await openPage();
  try {
    await context.clock.install();
    await page.goto(`${API_URL}/m#token=${token}&action=end-sessions`, { waitUntil: "load" });
    await page.locator("#ready").waitFor({ state: "visible" });
    assert.equal((await page.locator("#signin").textContent()).trim(), "End the sessions");
    // A mail scanner opening the link ends nothing.
    await scannerVisit(page);
    assert.equal(consumeRequests().length, 0, "the page acted without the button");
    assert.equal((await call("GET", "/me", { headers: bearer(phone.json.access_token) })).status, 200);
    await page.locator("#signin").click();
    await page.locator("#ended").waitFor({ state: "visible" });
    await screenshot(page, "sessions-ended", "ended");
    assert.deepEqual(errors, [], "page errors");
  } finally {
    await context.close();
  }
  // The phone's session ended; the earlier one (the sign-up's) did not.
  assert.equal((await call("GET", "/me", { headers: bearer(phone.json.access_token) })).status, 401);
  assert.equal((await call("GET", "/me", { headers: bearer(first.access_token) })).status, 200);
});
