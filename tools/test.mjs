#!/usr/bin/env node
// `make test` after the unit tests: start one local stack on free ports, run the Rust
// fixture replay (in-process handlers against this DynamoDB Local and SES sink) and the
// end-to-end tests over HTTP, check that no secret reached a log, stop everything.

import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, rmSync, mkdirSync, existsSync } from "node:fs";
import { join } from "node:path";
import { ROOT, startStack } from "./stack.mjs";

const logDir = join(ROOT, ".dev", `test-logs-${process.pid}`);
rmSync(logDir, { recursive: true, force: true });
mkdirSync(logDir, { recursive: true });

let failed = false;
const totals = { passed: 0, failed: 0 };

/** Runs a test command, streams its output, and adds its counts to the totals. */
function runSuite(cmd, args, env) {
  const r = spawnSync(cmd, args, { cwd: ROOT, env, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  process.stdout.write(r.stdout || "");
  process.stderr.write(r.stderr || "");
  const out = `${r.stdout}\n${r.stderr}`;
  for (const m of out.matchAll(/test result: \w+\. (\d+) passed; (\d+) failed/g)) {
    totals.passed += Number(m[1]);
    totals.failed += Number(m[2]);
  }
  const pass = /^# pass (\d+)$/m.exec(out);
  const fail = /^# fail (\d+)$/m.exec(out);
  if (pass) totals.passed += Number(pass[1]);
  if (fail) totals.failed += Number(fail[1]);
  if (r.status !== 0) failed = true;
}

if (!process.env.E2E_ONLY) {
  console.log("== unit tests ==");
  runSuite("cargo", ["test", "--workspace"], process.env);
  // The TypeScript client: its generated types match openapi.yaml, strict tsc, the size
  // budget, its unit tests.
  console.log("\n== TypeScript client (clients/typescript) ==");
  runSuite("npm", ["run", "check", "--silent", "-w", "@contact-auth/client"], process.env);
}

const stack = await startStack({
  logDir,
  table: `e2e-${Date.now().toString(36)}`,
  concurrency: 4,
  // Short email cooldown so the supersede test need not wait a minute; the 60 s default
  // is tested in the fixture replay. The per-IP budgets are raised because every test
  // request comes from 127.0.0.1 (the replay covers each per-IP 429 and mail budget).
  // LOG_LEVEL=debug: the secrets-in-logs check below then covers the most verbose level
  // a deployment can choose (the code clamps anything beyond it).
  env: { LOG_LEVEL: "debug", RATE_EMAIL_COOLDOWN_SECONDS: "2", RATE_EMAIL_PER_HOUR: "1000", RATE_IP_PER_MINUTE: "100000", RATE_IP_LOGIN_PER_MINUTE: "100000", RATE_IP_NEW_ADDRESS_MAIL_PER_MINUTE: "100000", RATE_IP_SIGN_IN_MAIL_PER_MINUTE: "100000", RATE_CODE_ATTEMPTS_PER_IP_HOUR: "100000", REFRESH_REUSE_GRACE_SECONDS: "2" },
});
const stop = async () => { await stack.stop(); };
// More demo data for the join and closed-registration flows.
stack.admin("team", "--id", "team_other", "--name", "Other Team", "--primary-hub", "hub_other");
stack.admin("hub", "--id", "hub_other", "--slug", "other-hub", "--team", "team_other", "--title", "Other Hub");
stack.admin("hub", "--id", "hub_closed", "--slug", "closed-hub", "--team", "team_abc123", "--title", "Closed Hub", "--registration", "off");
process.on("SIGINT", async () => { await stop(); process.exit(130); });

const env = {
  ...process.env,
  E2E_API_URL: stack.apiUrl,
  E2E_SES_URL: stack.sesUrl,
  E2E_EVENTS_URL: stack.eventsUrl,
  E2E_DDB_URL: stack.ddbUrl,
  E2E_TABLE: stack.table,
  E2E_LOG_DIR: logDir,
  // The replay test builds its own tables and state against these.
  REPLAY_DYNAMODB_URL: stack.ddbUrl,
  REPLAY_SES_URL: stack.sesUrl,
  REPLAY_EVENTS_URL: stack.eventsUrl,
  REPLAY_SES_GATE_URL: stack.sesGateUrl,
  REPLAY_LOG: join(logDir, "replay.log"),
};

try {
  const only = process.env.E2E_ONLY;
  if (!only) {
    console.log("\n== fixture replay (events/) against DynamoDB Local and the SES sink ==");
    runSuite("cargo", ["test", "--workspace", "--test", "replay", "--", "--include-ignored", "--test-threads", "1"], env);
  }
  console.log("\n== end-to-end over HTTP (tests/e2e) ==");
  const dir = join(ROOT, "tests", "e2e");
  const files = readdirSync(dir).filter((f) => f.endsWith(".test.mjs")).filter((f) => !only || only.split(",").some((o) => f.includes(o))).map((f) => join(dir, f));
  runSuite("node", ["--test", "--test-concurrency=1", ...files], env);
} finally {
  await stop();
}

// The Lambda artifacts `make sam-build` produced (make test runs it first).
if (process.env.SKIP_SAM_BUILD === "1") {
  console.log("\n== sam build: skipped (SKIP_SAM_BUILD=1) ==");
} else if (!process.env.E2E_ONLY) {
  console.log("\n== sam build output (.aws-sam/build) ==");
  const r = spawnSync(join(ROOT, ".venv", "bin", "python"), [join(ROOT, "tools", "check_build.py")], { cwd: ROOT, encoding: "utf8" });
  process.stdout.write(r.stdout || "");
  process.stderr.write(r.stderr || "");
  const m = /^(\d+) passed, (\d+) failed$/m.exec(r.stdout || "");
  totals.passed += m ? Number(m[1]) : 0;
  totals.failed += m ? Number(m[2]) : 1;
  if (r.status !== 0) failed = true;
}

// No secret, token or full email the tests saw may appear in any log line.
console.log("\n== secrets in logs ==");
const secretsFile = join(logDir, "secrets.txt");
const secrets = existsSync(secretsFile) ? [...new Set(readFileSync(secretsFile, "utf8").split("\n").filter((s) => s.length >= 8))] : [];
// Every log, also of the stacks tests start for themselves (subdirectories, e.g. spa/).
const logs = readdirSync(logDir, { recursive: true }).filter((f) => f.endsWith(".log") && !f.endsWith("ses.log"));
let leaks = 0;
for (const f of logs) {
  const text = readFileSync(join(logDir, f), "utf8");
  for (const s of secrets) {
    if (text.includes(s)) {
      leaks++;
      console.error(`LEAK: ${f} contains a secret the tests used (${s.slice(0, 4)}…)`);
    }
  }
}
const checked = `${secrets.length} secrets × ${logs.length} logs (${logs.join(", ")})`;
if (secrets.length < 10) {
  console.error(`too few secrets recorded (${secrets.length}): the log check would prove nothing`);
  failed = true;
} else if (leaks) {
  failed = true;
} else {
  console.log(`no secret in any log: ${checked}`);
}
if (leaks || secrets.length < 10) totals.failed += 1; else totals.passed += 1;
// The metrics the functions wrote (EMF lines): valid, low-cardinality, and the ones an
// operator relies on were produced (only when the whole e2e suite ran).
console.log("\n== metrics (EMF) in logs ==");
{
  const { checkLogs, EXPECTED } = await import("./emf-check.mjs");
  const { lines, problems, seen } = checkLogs(logs.map((f) => join(logDir, f)));
  const missing = process.env.E2E_ONLY ? [] : EXPECTED.filter((m) => !seen.has(m));
  for (const p of problems.slice(0, 10)) console.error(`EMF: ${p}`);
  if (missing.length) console.error(`EMF: never written: ${missing.join(", ")}`);
  if (problems.length || missing.length || lines === 0) {
    failed = true;
    totals.failed += 1;
  } else {
    totals.passed += 1;
    console.log(`${lines} EMF lines, all valid; seen: ${[...seen].filter((m) => EXPECTED.includes(m)).length} of ${EXPECTED.length} expected metrics`);
  }
}
console.log(failed ? "\nmake test: FAILED" : "\nmake test: all suites passed");
console.log(`${totals.passed} passed, ${totals.failed} failed`);
process.exit(failed ? 1 : 0);
