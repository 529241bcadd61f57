// The shipped artifacts answer requests: every function's `bootstrap` that `make sam-build`
// wrote (.aws-sam/build/<LogicalId>/) runs one success fixture through
// `make invoke BOOTSTRAP=…` against this run's DynamoDB Local and SES sink, and must match
// the fixture's expected file. The files are arm64: natively on arm64 Linux, under
// qemu-aarch64 with Debian's arm64 glibc elsewhere (tools/install.sh --qemu).
// No .aws-sam/build (SKIP_SAM_BUILD=1 on a fresh checkout): skipped, with a message.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const EVENTS = join(ROOT, "events");
const BUILD = join(ROOT, ".aws-sam", "build");

// The functions of template.yaml, logical id -> crate (tools/cfn.py reads its short-form
// tags and maps MagicConsumeFunction -> magic-consume like the Makefile's crate_of).
const listed = spawnSync(join(ROOT, ".venv", "bin", "python"), [join(ROOT, "tools", "cfn.py"), "functions"], { cwd: ROOT, encoding: "utf8" });
if (listed.status !== 0) throw new Error(`reading template.yaml: ${listed.stderr}`);
const table = JSON.parse(listed.stdout);
const ids = Object.keys(table).sort();
const crateOf = (id) => table[id].crate;
const bootstrapOf = (id) => join(BUILD, id, "bootstrap");

// Functions without a success.json: the fixture that does the most (writes, sends).
const PREFERRED = { logout: "with-cookie.json", "me-patch": "terms-of-service.json", mailer: "register-new-email-sends-link.json" };

/** One success fixture of `fn` without time shift, config or repeats: success.json, PREFERRED, success-*, any. */
function fixture(fn) {
  if (!existsSync(join(EVENTS, fn))) return undefined;
  const cases = readdirSync(join(EVENTS, fn))
    .filter((f) => f.endsWith(".expected.json"))
    .sort()
    .map((f) => [f.replace(".expected.json", ".json"), JSON.parse(readFileSync(join(EVENTS, fn, f), "utf8"))])
    .filter(([, e]) => (fn === "mailer" ? e.emails > 0 : fn === "ses-events" ? e.writes?.length > 0 : fn === "events" ? e.bus_events > 0 : e.status < 300) && !e.clock_offset && !e.config && !e.repeat);
  return cases.find(([f]) => f === "success.json") || cases.find(([f]) => f === PREFERRED[fn])
    || cases.find(([f]) => f.startsWith("success")) || cases[0];
}

const built = existsSync(BUILD);
const skip = built ? false : "no .aws-sam/build (run make sam-build; make test does unless SKIP_SAM_BUILD=1)";
if (skip) console.log(`artifacts: skipped: ${skip}`);
const started = Date.now();
let ran = 0;

test("template.yaml has functions, each with a built bootstrap and a success fixture", { skip }, () => {
  assert.ok(ids.length > 0, "no AWS::Serverless::Function in template.yaml");
  const missing = ids.filter((id) => !existsSync(bootstrapOf(id)));
  assert.deepEqual(missing, [], `built bootstraps missing in ${BUILD} (make sam-build)`);
  for (const id of ids) assert.ok(fixture(crateOf(id)), `events/${crateOf(id)}/ has no success fixture`);
});

for (const id of ids) {
  const fn = crateOf(id);
  const [file, exp] = fixture(fn) || ["(none)"];
  const why = skip || (!existsSync(bootstrapOf(id)) && "no bootstrap") || (!exp && "no success fixture");
  test(`${id}/bootstrap answers events/${fn}/${file}`, { skip: why }, () => {
    const t0 = Date.now();
    const r = spawnSync("make", ["-s", "invoke", `FN=${fn}`, `EVENT=events/${fn}/${file}`], {
      cwd: ROOT,
      encoding: "utf8",
      env: { ...process.env, BOOTSTRAP: bootstrapOf(id), INVOKE_DYNAMODB_URL: process.env.E2E_DDB_URL, INVOKE_SES_URL: process.env.E2E_SES_URL, INVOKE_EVENTS_URL: process.env.E2E_EVENTS_URL },
      timeout: 180000,
    });
    assert.equal(r.status, 0, `BOOTSTRAP=${bootstrapOf(id)} make invoke FN=${fn} EVENT=events/${fn}/${file}\n${r.stdout}\n${r.stderr}`);
    const want = fn === "mailer" ? `${exp.emails} mail(s)` : fn === "ses-events" || fn === "events" ? "result" : `status ${exp.status}`;
    assert.match(r.stdout, new RegExp(`events/${fn}/${file}: ok \\(${want.replace(/[()]/g, "\\$&")}`));
    ran++;
    const how = /under qemu-aarch64/.test(r.stdout) ? "under qemu-aarch64" : "natively";
    console.log(`${id}: ${(statSync(bootstrapOf(id)).size / 1e6).toFixed(2)} MB, ${how}, ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });
}

after(() => {
  if (!skip) console.log(`artifacts: ${ran} of ${ids.length} bootstraps answered as expected in ${((Date.now() - started) / 1000).toFixed(1)} s`);
});
