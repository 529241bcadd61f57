// The hosted sign-in page `GET /m`, driven in real headless Chromium: the emailed link
// `<API>/m#token=…` must strip the token from the address bar, must NOT consume the token
// on load (mail scanners open links), and must consume it exactly once on the button press.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { API_URL, uniqueEmail, register, waitForMail, mails, tokenFrom, consume, recordSecret, call, doc, bearer } from "./helpers.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const SCREENSHOT = join(ROOT, ".dev", "hosted-page.png");
const UI_TIMEOUT = 10000; // every Playwright wait fails after this, so a broken page never hangs
const TEST_TIMEOUT = 40000; // register + mail delivery + page
const SCANNER_WAIT = 1500;

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

/** A fresh page in its own context that records every request and page error. */
async function openPage() {
  const context = await browser.newContext();
  context.setDefaultTimeout(UI_TIMEOUT);
  context.setDefaultNavigationTimeout(UI_TIMEOUT);
  const page = await context.newPage();
  const requests = [];
  const errors = [];
  page.on("request", (req) => requests.push({ method: req.method(), url: req.url() }));
  page.on("pageerror", (err) => errors.push(err.message));
  const consumeRequests = () => requests.filter((r) => r.url.includes("/magic/consume"));
  return { context, page, requests, errors, consumeRequests };
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

test("a real link: token stripped from the URL, not consumed on load, consumed once by the button", { timeout: TEST_TIMEOUT }, async () => {
  const { email, token } = await freshLink();
  const { context, page, errors, consumeRequests } = await openPage();
  try {
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
    await sleep(SCANNER_WAIT);
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
    await page.goto(`${API_URL}/m#token=${token}`, { waitUntil: "load" });
    await page.locator("#ready").waitFor({ state: "visible" });
    await sleep(SCANNER_WAIT);
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
  const m = /(https?:\/\/\S+\/m#token=[A-Za-z0-9_-]{43}&action=undo)/.exec(notice.body.text);
  assert.ok(m, `no undo link in: ${notice.body.text}`);
  tokenFrom(notice);
  const { context, page, errors, consumeRequests } = await openPage();
  try {
    await page.goto(m[1], { waitUntil: "load" });
    assert.equal(page.url(), `${API_URL}/m`);
    await page.locator("#ready").waitFor({ state: "visible" });
    assert.equal((await page.locator("#signin").textContent()).trim(), "Undo the change");
    await sleep(SCANNER_WAIT);
    assert.equal(consumeRequests().length, 0, "the page used the undo link on load");
    await page.locator("#signin").click();
    await page.locator("#undone").waitFor({ state: "visible" });
    assert.deepEqual(await visibleSections(page), ["undone"]);
    assert.deepEqual(errors, [], "page errors");
  } finally {
    await context.close();
  }
  const me = await call("GET", "/me", { headers: bearer(pair.json.access_token) });
  assert.equal(me.status, 401, "the undo ended every session");
});
