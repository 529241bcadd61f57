// Issue 20: a hub's branding and the member's language, end to end through the stack:
// the admin CLI's checks, the order of choice for a mail's language (the request's
// `locale` → the member's stored one → Accept-Language → the hub's default), mail in the
// hub's voice (RFC 2047 subject, sender name, reply-to, logo, accent, escaped name), and
// the hosted page in each locale with the hub's branding, screenshotted per locale into
// $SCREENSHOT_DIR (default .dev/screenshots) as hosted-brand-<locale>.png.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { API_URL, call, doc, uniqueEmail, waitForMail, waitForLink, tokenFrom, consume, admin, mails } from "./helpers.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const SCREENSHOT_DIR = resolve(ROOT, process.env.SCREENSHOT_DIR || ".dev/screenshots");
const LOCALES = ["en", "de", "fr", "es", "nl"];
const catalog = (l) => JSON.parse(readFileSync(join(ROOT, "shared", "i18n", `${l}.json`), "utf8"));
const SLUG = "brand-hub";
const NAME = "Akademie für Mitglieder";
const LOGO = "https://cdn.example.org/akademie/logo.svg";
const ACCENT = "#0b6e4f";
const COOLDOWN = 2100;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** RFC 2047 encoded-words (UTF-8, base64) decoded as a mail client would. */
function decodeHeader(h) {
  return h.replace(/=\?UTF-8\?B\?([A-Za-z0-9+/=]+)\?=\s*/g, (_, b64) => Buffer.from(b64, "base64").toString("utf8"));
}

function registerWith(attributes, headers = {}) {
  return call("POST", "/register", { body: doc("register_requests", attributes), headers });
}

before(() => {
  admin("hub", "--id", "hub_brand", "--slug", SLUG, "--team", "team_abc123", "--title", "Brand Hub");
  admin(
    "branding", "--slug", SLUG,
    "--display-name", NAME,
    "--logo-url", LOGO,
    "--accent", ACCENT,
    "--sender-name", "Die Akademie",
    "--reply-to", "hallo@akademie.example",
    "--default-locale", "de",
    "--text", "nl:mail.register.subject=Welkom bij {hub}: bevestig je e-mailadres",
  );
});

test("the admin CLI refuses branding that could break a page or a mail", () => {
  const refused = (args, why) => {
    assert.throws(() => admin("branding", "--slug", SLUG, ...args), (e) => why.test(e.message), args.join(" "));
  };
  refused(["--accent", "#ffff00"], /contrast/);
  refused(["--accent", "red;background:url(x)"], /#rrggbb/);
  refused(["--logo-url", "http://cdn.example.org/logo.png"], /https only/);
  refused(["--logo-url", "javascript:alert(1)"], /logo URL/);
  refused(["--reply-to", "not an address"], /reply-to/);
  refused(["--default-locale", "pt"], /not a supported locale/);
  refused(["--text", "de:mail.sign_in.subject=Hallo {email}"], /not one of its placeholders/);
  refused(["--text", "de:no.such.key=Hallo"], /unknown text key/);
  refused(["--display-name", "x".repeat(81)], /1 to 80/);
});

test("a mail's language: the hub's default, then Accept-Language, then the request's locale, then the member's stored one", { timeout: 60000 }, async () => {
  const de = catalog("de");
  const email = uniqueEmail("lang");
  // Nothing asked: the hub's default (German), in the hub's voice.
  assert.equal((await registerWith({ email, slug: SLUG })).status, 202);
  let mail = await waitForMail(email);
  assert.equal(decodeHeader(mail.subject), de["mail.register.subject"].replace("{hub}", NAME));
  assert.match(mail.subject, /^=\?UTF-8\?B\?/, "a subject that is not ASCII goes out as RFC 2047 encoded-words");
  assert.match(mail.from, /^"Die Akademie" </);
  assert.deepEqual(mail.replyTo, ["hallo@akademie.example"]);
  assert.ok(mail.body.text.includes(`${API_URL}/m?hub=${SLUG}&lang=de#token=`), mail.body.text);
  assert.ok(mail.body.html.includes(`lang="de"`) && mail.body.html.includes(`src="${LOGO}"`) && mail.body.html.includes(`background:${ACCENT}`));
  assert.ok(mail.body.html.includes("Akademie für Mitglieder"));

  // Accept-Language beats the hub's default (a new address: no stored language).
  const other = uniqueEmail("lang-al");
  await registerWith({ email: other, slug: SLUG }, { "Accept-Language": "es-MX, es;q=0.9, de;q=0.5" });
  mail = await waitForMail(other);
  assert.equal(decodeHeader(mail.subject), catalog("es")["mail.register.subject"].replace("{hub}", NAME));

  // The request's locale beats Accept-Language; the hub's plain-text override is used.
  const third = uniqueEmail("lang-nl");
  await registerWith({ email: third, slug: SLUG, locale: "nl-BE" }, { "Accept-Language": "fr" });
  mail = await waitForMail(third);
  assert.equal(decodeHeader(mail.subject), `Welkom bij ${NAME}: bevestig je e-mailadres`);
  assert.ok(mail.body.text.includes(catalog("nl")["mail.register.lead"].replace("{hub}", NAME)));

  // Signing in with a link asked for in French stores French as the member's language:
  // the next mail is French although the request says Spanish in Accept-Language.
  await sleep(COOLDOWN);
  const before = (await mails(email)).length;
  await registerWith({ email, slug: SLUG, locale: "fr" });
  mail = await waitForMail(email, before);
  assert.equal(decodeHeader(mail.subject), catalog("fr")["mail.register.subject"].replace("{hub}", NAME));
  assert.equal((await consume(tokenFrom(mail))).status, 200);
  await sleep(COOLDOWN);
  const n = (await mails(email)).length;
  const r = await call("POST", "/magic", { body: doc("magic_link_requests", { email, slug: SLUG }), headers: { "Accept-Language": "es" } });
  assert.equal(r.status, 202);
  mail = await waitForMail(email, n);
  assert.equal(decodeHeader(mail.subject), catalog("fr")["mail.sign_in.subject"].replace("{hub}", NAME));

  // An existing member signing in with a link asked for in Dutch switches to Dutch.
  await sleep(COOLDOWN);
  let k = (await mails(email)).length;
  await call("POST", "/magic", { body: doc("magic_link_requests", { email, slug: SLUG, locale: "nl" }) });
  mail = await waitForMail(email, k);
  assert.equal(decodeHeader(mail.subject), catalog("nl")["mail.sign_in.subject"].replace("{hub}", NAME));
  assert.equal((await consume(tokenFrom(mail))).status, 200);
  await sleep(COOLDOWN);
  k = (await mails(email)).length;
  await call("POST", "/magic", { body: doc("magic_link_requests", { email, slug: SLUG }), headers: { "Accept-Language": "de" } });
  mail = await waitForLink(email, k);
  assert.equal(decodeHeader(mail.subject), catalog("nl")["mail.sign_in.subject"].replace("{hub}", NAME));
});

test("a hub name with markup is text in the mail and on the page", { timeout: 60000 }, async () => {
  const evil = `Club "<img src=x onerror=alert(1)>" & Co`;
  admin("hub", "--id", "hub_evil", "--slug", "evil-hub", "--team", "team_abc123", "--title", "Evil");
  admin("branding", "--slug", "evil-hub", "--display-name", evil);
  const email = uniqueEmail("evil");
  await registerWith({ email, slug: "evil-hub" });
  const mail = await waitForMail(email);
  assert.ok(!mail.body.html.includes("<img src=x"), "escaped in the HTML part");
  assert.ok(decodeHeader(mail.subject).includes(evil), "the subject is the name as text");
  const browser = await launch();
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("dialog", (d) => { errors.push(`dialog: ${d.message()}`); d.dismiss(); });
    await page.goto(`${API_URL}/m?hub=evil-hub&lang=en`);
    await page.locator("#start").waitFor({ state: "visible" });
    assert.equal((await page.locator("#start-hub").textContent()).trim(), evil);
    assert.equal(await page.locator("img").count(), 1, "only the (hidden) logo element");
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

test("the hosted page in every locale, branded; ?lang beats Accept-Language, which beats the hub's default", { timeout: 90000 }, async () => {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const browser = await launch();
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="220" height="48"><rect width="48" height="48" rx="10" fill="${ACCENT}"/><text x="60" y="32" font-family="sans-serif" font-size="22" fill="#1d2330">Akademie</text></svg>`;
  try {
    for (const lang of LOCALES) {
      const t = catalog(lang);
      const context = await browser.newContext({ locale: "ja-JP", viewport: { width: 800, height: 760 } });
      const page = await context.newPage();
      // The logo's host is outside this machine: served here, and the page's CSP must let it in.
      await page.route("https://cdn.example.org/**", (route) => route.fulfill({ status: 200, contentType: "image/svg+xml", body: svg }));
      const res = await page.goto(`${API_URL}/m?hub=${SLUG}&lang=${lang}`);
      assert.match(res.headers()["content-security-policy"], /img-src 'self' data: https:\/\/cdn\.example\.org;/);
      await page.locator("#start").waitFor({ state: "visible" });
      assert.equal(await page.getAttribute("html", "lang"), lang);
      assert.equal((await page.locator("#start-title").textContent()).trim(), t["page.start.title"]);
      assert.equal((await page.locator("#send").textContent()).trim(), t["page.start.send"]);
      assert.equal((await page.locator("#start-hub").textContent()).trim(), NAME);
      assert.equal(await page.locator("#logo").getAttribute("src"), LOGO);
      await page.waitForFunction(() => document.getElementById("logo").naturalWidth > 0);
      const bg = await page.locator("#send").evaluate((b) => getComputedStyle(b).backgroundColor);
      assert.equal(bg, "rgb(11, 110, 79)", "the hub's accent");
      // A wrong email shows a translated error, too.
      await page.fill("#email", "not-an-email");
      await page.click("#send");
      assert.equal((await page.locator("#start-status").textContent()).trim(), t["page.error.email_invalid"]);
      await page.fill("#email", "");
      await page.locator("#start-status").evaluate((el) => { el.textContent = ""; });
      await page.locator("#email").evaluate((el) => { el.removeAttribute("aria-invalid"); el.blur(); });
      await page.screenshot({ path: join(SCREENSHOT_DIR, `hosted-brand-${lang}.png`) });
      await context.close();
    }
    // Without ?lang: Accept-Language (French), else the hub's default (German).
    const fr = await browser.newContext({ locale: "fr-FR" });
    let page = await fr.newPage();
    await page.goto(`${API_URL}/m?hub=${SLUG}`);
    assert.equal(await page.getAttribute("html", "lang"), "fr");
    await fr.close();
    const ja = await browser.newContext({ locale: "ja-JP" });
    page = await ja.newPage();
    await page.goto(`${API_URL}/m?hub=${SLUG}`);
    assert.equal(await page.getAttribute("html", "lang"), "de");
    // No hub: unbranded English for a Japanese browser.
    await page.goto(`${API_URL}/m`);
    assert.equal(await page.getAttribute("html", "lang"), "en");
    assert.equal(await page.locator("#logo").isHidden(), true);
    await ja.close();
  } finally {
    await browser.close();
  }
});
