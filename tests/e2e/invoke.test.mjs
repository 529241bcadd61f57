// `make invoke FN= EVENT=` (tools/invoke.mjs): every function's success fixtures, and
// the fixtures that need invoke's time shift, config or repeats, go through the function
// binary under cargo lambda's Runtime API emulator and must match their expected files.
// A doctored expected file must make it fail.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, mkdirSync, copyFileSync, writeFileSync, rmSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const EVENTS = join(ROOT, "events");

function invoke(fn, event) {
  return spawnSync("make", ["-s", "invoke", `FN=${fn}`, `EVENT=${event}`], {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, INVOKE_DYNAMODB_URL: process.env.E2E_DDB_URL, INVOKE_SES_URL: process.env.E2E_SES_URL, INVOKE_EVENTS_URL: process.env.E2E_EVENTS_URL },
    timeout: 180000,
  });
}

/** Whether `e` expects a success: a mail sent (mailer), any handled event (ses-events: every
 * fixture is one, its result checked), a 2xx answer (HTTP functions). */
const succeeds = (fn, e) => (fn === "mailer" ? e.emails > 0 : fn === "ses-events" || fn === "events" ? true : e.status < 300);
/** What `make invoke` prints for a fixture of `fn` that went as expected. */
const okText = (fn, e) => (fn === "mailer" ? `${e.emails} mail(s)` : fn === "ses-events" || fn === "events" ? "result" : `status ${e.status}`);

/** Fixtures of `fn` whose expected result is a success, or that use time, config or repeats. */
function chosen(fn) {
  return readdirSync(join(EVENTS, fn))
    .filter((f) => f.endsWith(".expected.json"))
    .map((f) => [f.replace(".expected.json", ".json"), JSON.parse(readFileSync(join(EVENTS, fn, f), "utf8"))])
    .filter(([, e]) => succeeds(fn, e) || e.clock_offset || e.config || e.repeat);
}

const functions = readdirSync(EVENTS).sort();

test("every function has a success fixture that make invoke runs", () => {
  assert.equal(functions.length, 20);
  for (const fn of functions) {
    assert.ok(chosen(fn).some(([, e]) => succeeds(fn, e)), `${fn} has no success fixture`);
  }
});

for (const fn of functions) {
  test(`make invoke: ${fn}`, () => {
    for (const [file, exp] of chosen(fn)) {
      const r = invoke(fn, `events/${fn}/${file}`);
      assert.equal(r.status, 0, `make invoke FN=${fn} EVENT=events/${fn}/${file}\n${r.stdout}\n${r.stderr}`);
      const want = okText(fn, exp);
      assert.match(r.stdout, new RegExp(`events/${fn}/${file}: ok \\(${want.replace(/[()]/g, "\\$&")}`));
    }
  });
}

test("make invoke fails when the function's answer differs from the expected file", () => {
  const dir = join(ROOT, ".dev", "invoke", "doctored");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(EVENTS, "jwks", "success.json"), join(dir, "success.json"));
  writeFileSync(join(dir, "success.expected.json"), JSON.stringify({ status: 404, code: "not_found" }));
  const r = invoke("jwks", join(dir, "success.json"));
  assert.equal(r.status, 2, `${r.stdout}\n${r.stderr}`.slice(0, 2000) || "no output");
  assert.match(r.stderr, /differs from \S*success\.expected\.json: status 200, want 404/);
  // The body and header comparison of the same comparator (testkit::verdict).
  writeFileSync(join(dir, "success.expected.json"), JSON.stringify({
    status: 200, body: { "/keys/0/kty": "OKP" }, header_values: { "cache-control": "no-store" },
  }));
  const b = invoke("jwks", join(dir, "success.json"));
  assert.equal(b.status, 2, `${b.stdout}\n${b.stderr}`.slice(0, 2000) || "no output");
  assert.match(b.stderr, /body \/keys\/0\/kty = Some\(String\("RSA"\)\), want "OKP"/);
  assert.match(b.stderr, /header cache-control \["public, max-age=300"\], want "no-store"/);
});
