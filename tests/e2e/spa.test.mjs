// examples/spa (the Vite app over @contact-auth/client) driven in headless Chromium against
// its own local stack: access tokens live 6 s there (so a refresh after expiry takes
// seconds, not 15 minutes), the deployment opted in to the partitioned cookie (mode C),
// and the app's dev server (a free port) is an allowed CORS and redirect origin.
// Mode A goes through the dev server's /api proxy (first-party cookie); B and C call the
// API on 127.0.0.1, another site than localhost.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";
import { ROOT, freePort, startStack, waitFor, sleep } from "../../tools/stack.mjs";
import { recordSecret } from "./helpers.mjs";

const ACCESS_TTL = 6;
const UI = 15000;
const SCREENSHOT_DIR = resolve(ROOT, process.env.SCREENSHOT_DIR || ".dev/screenshots");
const PREFIX = "/api/v1/contact-auth";

let stack, vite, spa, browser;

before(async () => {
  const port = await freePort();
  spa = `http://localhost:${port}`;
  stack = await startStack({
    logDir: join(process.env.E2E_LOG_DIR || join(ROOT, ".dev", "spa-logs"), "spa"),
    concurrency: 2,
    env: {
      ACCESS_TOKEN_TTL_SECONDS: String(ACCESS_TTL),
      REFRESH_COOKIE_PARTITIONED: "true",
      CORS_ALLOWED_ORIGINS: spa,
      RATE_EMAIL_COOLDOWN_SECONDS: "1",
      RATE_IP_PER_MINUTE: "100000",
      RATE_IP_NEW_ADDRESS_MAIL_PER_MINUTE: "100000",
    },
  });
  stack.admin("origins", "--slug", "member-academy", "--set", spa);
  vite = spawn(join(ROOT, "node_modules", ".bin", "vite"), ["--port", String(port)], {
    cwd: join(ROOT, "examples", "spa"),
    env: { ...process.env, API_URL: stack.apiUrl, PORT: String(port) },
    stdio: "ignore",
    detached: true,
  });
  await waitFor("the example app", async () => (await fetch(spa)).ok, 60000);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
  if (vite?.pid) {
    try { process.kill(-vite.pid, "SIGTERM"); } catch { /* gone */ }
  }
  await stack?.stop();
});

const uniqueEmail = (tag) => `spa-${tag}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}@example.com`;

async function mailsTo(to) {
  const { emails } = await (await fetch(`${stack.sesUrl}/store`)).json();
  return (emails || []).filter((m) => (m.destination?.to || []).includes(to));
}

/** The newest mail to `to` beyond `already`: its link (to this app) and code. */
async function nextMail(to, already = 0) {
  let mail;
  await waitFor(`a mail to ${to}`, async () => {
    const all = await mailsTo(to);
    mail = all.length > already ? all.at(-1) : undefined;
    return !!mail;
  }, 20000);
  const text = mail.body?.text || "";
  const link = /(http:\/\/localhost:\d+\/[^\s]*#token=[A-Za-z0-9_-]+)/.exec(text)?.[1];
  const code = /\b(\d{3}[ -]?\d{3})\b/.exec(text)?.[1]?.replace(/\D/g, "");
  if (link) recordSecret(link.split("#token=")[1]);
  if (code) recordSecret(code);
  return { link, code };
}

/** A page that records the API requests it makes (method, path, headers, body). */
async function tracked(context, url) {
  const page = await context.newPage();
  const calls = [];
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("request", async (req) => {
    const u = new URL(req.url());
    if (!u.pathname.startsWith(PREFIX)) return;
    const call = { method: req.method(), path: u.pathname.slice(PREFIX.length), host: u.host, headers: {}, body: req.postData() };
    calls.push(call);
    call.headers = await req.allHeaders().catch(() => ({}));
  });
  await page.goto(url);
  return { page, calls, errors };
}

const status = (page) => page.locator("#status");
const events = (page) => page.locator("#log li").allTextContents();

async function registerAndCode(page, email) {
  await page.fill("#email", email);
  const before = (await mailsTo(email)).length;
  await page.click("#register");
  await page.locator("#notice").filter({ hasText: "Check" }).waitFor({ timeout: UI });
  const { code } = await nextMail(email, before);
  assert.match(code, /^\d{6}$/);
  await page.fill("#code", code);
  await page.click("#use-code");
  await status(page).filter({ hasText: "Signed in" }).waitFor({ timeout: UI });
}

test("mode A: a link signs in through the proxy; profile, sessions, a password; a refresh after the access token expired; a second tab sees the sign-out", { timeout: 120000 }, async () => {
  const context = await browser.newContext();
  try {
    const email = uniqueEmail("a");
    const first = await tracked(context, `${spa}/?auto=0`);
    await status(first.page).filter({ hasText: "Signed out" }).waitFor({ timeout: UI });

    // Register by link: the mail's link lands on this app with #token=, bound to this
    // browser; opened in a new tab, as from a mail client. The asking tab hears of it.
    await first.page.fill("#email", email);
    await first.page.click("#register");
    const { link } = await nextMail(email);
    const askingCalls = first.calls.length;
    assert.ok(link?.startsWith(`${spa}/?auto=0#token=`), `the link goes to the app: ${link}`);
    const { page, calls, errors } = await tracked(context, link);
    await status(page).filter({ hasText: "Signed in (magic_link)" }).waitFor({ timeout: UI });
    assert.equal(new URL(page.url()).hash, "", "the token left the address bar");
    const consume = calls.find((c) => c.path === "/magic/consume");
    assert.equal(consume.host, new URL(spa).host, "mode A: same origin, through the proxy");
    assert.match(JSON.parse(consume.body).data.attributes.code_verifier, /^[A-Za-z0-9_-]{43}$/, "PKCE verifier sent");
    await status(first.page).filter({ hasText: "Signed in (magic_link)" }).waitFor({ timeout: UI });
    assert.equal(first.calls.slice(askingCalls).filter((c) => c.path === "/magic/consume" || c.path === "/refresh").length, 0, "the asking tab got the pair over BroadcastChannel");

    await page.locator("#me-email").filter({ hasText: email }).waitFor({ timeout: UI });
    await page.locator("#sessions li").filter({ hasText: "this session" }).waitFor({ timeout: UI });
    assert.equal(await page.locator("#me-password").textContent(), "not set");
    await page.fill("#new-password", "saffron-ladder-orbit-73");
    recordSecret("saffron-ladder-orbit-73");
    await page.click("#set-password");
    await page.locator("#me-password").filter({ hasText: /^set$/ }).waitFor({ timeout: UI });

    // The cookie is first-party (the app's own host), Strict and HttpOnly.
    const cookie = (await context.cookies(`${spa}${PREFIX}/refresh`)).find((c) => c.name === "contact_refresh");
    assert.ok(cookie?.value, "refresh cookie stored for the app's site");
    assert.equal(cookie.sameSite, "Strict");
    assert.equal(cookie.httpOnly, true);

    // autoRefresh is off (auto=0): let the access token expire, then act.
    const firstToken = calls.filter((c) => c.path === "/me").at(-1).headers.authorization;
    await sleep((ACCESS_TTL + 1) * 1000);
    const expired = await fetch(`${stack.apiUrl}${PREFIX}/me`, { headers: { authorization: firstToken } });
    assert.equal(expired.status, 401, "the server no longer takes the first access token");
    const mark = calls.length;
    await page.click("#reload");
    await page.locator("#sessions li").first().waitFor({ timeout: UI });
    await waitFor("the reload's calls", async () => calls.slice(mark).some((c) => c.path === "/me/sessions"), UI);
    const after = calls.slice(mark);
    const refreshAt = after.findIndex((c) => c.path === "/refresh");
    const meAt = after.findIndex((c) => c.path === "/me");
    assert.ok(refreshAt >= 0 && refreshAt < meAt, `refresh first, then /me: ${after.map((c) => c.path)}`);
    assert.equal(after.filter((c) => c.path === "/refresh").length, 1, "one refresh for two parallel calls");
    assert.notEqual(after[meAt].headers.authorization, firstToken);
    assert.match(after[refreshAt].headers.cookie || "", /contact_refresh=/, "the refresh used the cookie");
    assert.deepEqual(JSON.parse(after[refreshAt].body), { data: { type: "refresh_requests" } }, "no token in the body");
    assert.ok((await events(page)).some((e) => e.endsWith("TOKEN_REFRESHED")));

    // A second tab of the same browser is signed in, and sees a sign-out in the first.
    const second = await tracked(context, `${spa}/?auto=0`);
    await status(second.page).filter({ hasText: "Signed in" }).waitFor({ timeout: UI });
    await second.page.locator("#me-email").filter({ hasText: email }).waitFor({ timeout: UI });
    await mkdirSync(SCREENSHOT_DIR, { recursive: true });
    await page.screenshot({ path: join(SCREENSHOT_DIR, "spa-signed-in.png"), fullPage: true });
    await page.click("#sign-out");
    await status(second.page).filter({ hasText: "Signed out" }).waitFor({ timeout: UI });
    assert.ok((await events(second.page)).some((e) => e.endsWith("SIGNED_OUT")));
    assert.equal(second.calls.filter((c) => c.path === "/logout").length, 0, "only the first tab called logout");
    assert.equal(calls.filter((c) => c.path === "/logout").length, 1);
    // The session ended on the server: the cookie is cleared and refreshing is refused.
    assert.equal((await context.cookies(`${spa}${PREFIX}/refresh`)).find((c) => c.name === "contact_refresh")?.value ?? "", "");
    const gone = await fetch(`${stack.apiUrl}${PREFIX}/refresh`, { method: "POST", headers: { cookie: `contact_refresh=${cookie.value}` } });
    assert.equal(gone.status, 401);
    await status(first.page).filter({ hasText: "Signed out" }).waitFor({ timeout: UI });
    assert.deepEqual(errors.concat(second.errors, first.errors), []);
  } finally {
    await context.close();
  }
});

test("mode B: the body token from another site, refreshed on the timer, kept across a reload; no cookie travels", { timeout: 90000 }, async () => {
  const context = await browser.newContext();
  try {
    const { page, calls, errors } = await tracked(context, `${spa}/?mode=body&api=${encodeURIComponent(stack.apiUrl)}`);
    await status(page).filter({ hasText: "Signed out" }).waitFor({ timeout: UI });
    await registerAndCode(page, uniqueEmail("b"));
    assert.equal(calls.find((c) => c.path === "/magic/consume").host, new URL(stack.apiUrl).host, "cross-site call");
    // autoRefresh: at half the 6 s lifetime, with no user action.
    await page.locator("#log li[data-event=TOKEN_REFRESHED]").first().waitFor({ timeout: UI });
    const refresh = calls.find((c) => c.path === "/refresh");
    assert.match(JSON.parse(refresh.body).data.attributes.refresh_token, /^[A-Za-z0-9_-]{20,}$/);
    assert.equal(refresh.headers.cookie, undefined, "credentials omitted");
    recordSecret(JSON.parse(refresh.body).data.attributes.refresh_token);
    await page.reload();
    await status(page).filter({ hasText: "Signed in" }).waitFor({ timeout: UI });
    await page.locator("#sessions li").first().waitFor({ timeout: UI });
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

test("mode C: a partitioned cookie restores the session on another site; a Strict cookie cannot", { timeout: 90000 }, async () => {
  const context = await browser.newContext();
  try {
    const api = encodeURIComponent(stack.apiUrl);
    const { page, calls, errors } = await tracked(context, `${spa}/?mode=partitioned&api=${api}&auto=0`);
    await status(page).filter({ hasText: "Signed out" }).waitFor({ timeout: UI });
    await registerAndCode(page, uniqueEmail("c"));
    assert.equal(calls.find((c) => c.path === "/magic/consume").headers["refresh-cookie"], "partitioned");
    const chip = (await context.cookies(`${stack.apiUrl}${PREFIX}/refresh`)).find((c) => c.name === "contact_refresh_partitioned");
    assert.ok(chip?.value, "the partitioned cookie is stored");
    assert.equal(chip.sameSite, "None");
    assert.equal(chip.httpOnly, true);
    assert.equal(chip.secure, true);
    assert.match(chip.partitionKey || "", /localhost/, `kept under the app's site: ${chip.partitionKey}`);
    // A fresh load with nothing stored: only the cookie can restore the session.
    await page.evaluate(() => localStorage.clear());
    const mark = calls.length;
    await page.reload();
    await status(page).filter({ hasText: "Signed in" }).waitFor({ timeout: UI });
    const restore = calls.slice(mark).find((c) => c.path === "/refresh");
    assert.match(restore.headers.cookie || "", /contact_refresh_partitioned=/);
    assert.equal(restore.headers["refresh-cookie"], "partitioned");
    assert.deepEqual(errors, []);

    // The same cross-site setup with the Strict cookie (mode A misused): signed in by code,
    // but a reload without storage finds no cookie to refresh with.
    const strict = await tracked(context, `${spa}/?mode=cookie&api=${api}&auto=0`);
    await status(strict.page).filter({ hasText: "Signed out" }).waitFor({ timeout: UI });
    await registerAndCode(strict.page, uniqueEmail("strict"));
    await strict.page.evaluate(() => localStorage.clear());
    await strict.page.reload();
    await status(strict.page).filter({ hasText: "Signed out" }).waitFor({ timeout: UI });
  } finally {
    await context.close();
  }
});
