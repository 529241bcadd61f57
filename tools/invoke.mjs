#!/usr/bin/env node
// `make invoke FN=<function> EVENT=<file>`: one fixture through one function's binary,
// with cargo-lambda's Runtime API emulator (`cargo lambda watch --only-lambda-apis`) and
// `cargo lambda invoke`. No Docker.
//
//   1. The fixture's state: a fresh table in DynamoDB Local, seeded, with the `setup` of
//      <file>.expected.json done (`contact-auth-admin fixture`; the same code the replay
//      tests use) and the event's {{placeholders}} filled in.
//   2. The function's binary runs against the emulator exactly as Lambda runs `bootstrap`:
//      it polls the Runtime API, handles the event, posts the response.
//   3. The response is printed and checked against the expected file (status, error code,
//      headers; for the mailer: no batch item failures and the mails sent; for ses-events:
//      its result, the summary). Exit 1 when it differs.
//
// Which binary: BOOTSTRAP=<path> if given, else this machine's build of the function
// (`cargo build --bin <function>`). Lambda's `bootstrap` from `make build` is the same
// crate cross-compiled for arm64: BOOTSTRAP=.aws-sam/build/<LogicalId>/bootstrap runs that
// very file, natively on arm64 Linux, under qemu-aarch64 with Debian's arm64 glibc
// elsewhere (`tools/install.sh --qemu`; QEMU_LD_PREFIX overrides /usr/aarch64-linux-gnu).
//
// DynamoDB Local, the SES sink and the EventBridge stand-in: INVOKE_DYNAMODB_URL,
// INVOKE_SES_URL and INVOKE_EVENTS_URL reuse running ones (the tests do); otherwise private
// ones start on free ports and stop afterwards.

import { spawnSync, execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync, openSync, readSync, closeSync, statSync } from "node:fs";
import { join, resolve, basename } from "node:path";
import { createConnection } from "node:net";
import { ROOT, BIN, freePort, sleep, waitFor, processGroup, startServices, functionEnv, admin, mailsTo } from "./stack.mjs";

const [fn, eventArg] = process.argv.slice(2);
if (!fn || !eventArg) {
  console.error("usage: make invoke FN=<function> EVENT=<events/<function>/<case>.json>");
  process.exit(2);
}
const fnDir = join(ROOT, "events", fn);
if (!existsSync(join(ROOT, "functions", fn)) || !existsSync(fnDir)) {
  console.error(`no function ${fn}; functions: see events/ (one folder per function)`);
  process.exit(2);
}
const eventPath = resolve(eventArg);
const expectedPath = eventPath.replace(/\.json$/, ".expected.json");
if (!existsSync(eventPath) || !existsSync(expectedPath)) {
  console.error(`${eventArg} or its .expected.json does not exist`);
  process.exit(2);
}
const expected = JSON.parse(readFileSync(expectedPath, "utf8"));
const cargoLambda = join(ROOT, ".venv", "bin", "cargo-lambda");

let bootstrap = process.env.BOOTSTRAP;
if (!bootstrap) {
  const r = spawnSync("cargo", ["build", "--quiet", "--bin", fn, "--bin", "contact-auth-admin"], { cwd: ROOT, stdio: "inherit" });
  if (r.status !== 0) process.exit(1);
  bootstrap = join(BIN, fn);
}

// An AArch64 ELF (e_machine 183, little-endian at byte 18) on another host runs under
// qemu-aarch64, which loads its dynamic linker and glibc from the -L prefix.
const EM_AARCH64 = 183;
if (!existsSync(bootstrap)) {
  console.error(`no ${bootstrap}`);
  process.exit(2);
}
const head = Buffer.alloc(20);
const fd = openSync(bootstrap, "r");
readSync(fd, head, 0, 20, 0);
closeSync(fd);
let command = [bootstrap];
if (head.readUInt32BE(0) === 0x7f454c46 && head.readUInt16LE(18) === EM_AARCH64 && process.arch !== "arm64") {
  if (spawnSync("qemu-aarch64", ["--version"]).status !== 0) {
    console.error(`${bootstrap} is an arm64 ELF and this machine is ${process.arch}: it needs qemu-aarch64 (tools/install.sh --qemu)`);
    process.exit(2);
  }
  command = ["qemu-aarch64", "-L", process.env.QEMU_LD_PREFIX || "/usr/aarch64-linux-gnu", bootstrap];
  console.log(`invoke: ${bootstrap} under ${command.slice(0, 3).join(" ")}`);
}

const workDir = join(ROOT, ".dev", "invoke");
const logDir = process.env.E2E_LOG_DIR || join(ROOT, ".dev", "logs");
mkdirSync(workDir, { recursive: true });
const group = processGroup(logDir);

async function main() {
  let ddbUrl = process.env.INVOKE_DYNAMODB_URL;
  let sesUrl = process.env.INVOKE_SES_URL;
  let eventsUrl = process.env.INVOKE_EVENTS_URL;
  if (!ddbUrl || !sesUrl || !eventsUrl) {
    ({ ddbUrl, sesUrl, eventsUrl } = await startServices(group, await freePort(), await freePort()));
  }
  const table = `invoke-${fn}-${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  const env = { ...functionEnv({ ddbUrl, sesUrl, table, publicBaseUrl: "http://localhost:3000" }), AWS_ENDPOINT_URL_EVENTBRIDGE: eventsUrl };
  if (expected.config?.ip_per_minute) env.RATE_IP_PER_MINUTE = String(expected.config.ip_per_minute);
  if (expected.config?.partitioned_cookie) env.REFRESH_COOKIE_PARTITIONED = "true";
  if (expected.config?.code_attempts_per_ip_hour) env.RATE_CODE_ATTEMPTS_PER_IP_HOUR = String(expected.config.code_attempts_per_ip_hour);
  admin(env, "dev-key", "--out", env.SIGNING_KEY_FILE);
  const resolved = join(workDir, `${fn}-${basename(eventPath)}`);
  const fixtureArgs = ["fixture", "--event", eventPath, "--out", resolved, "--template", join(ROOT, "template.yaml")];
  if (process.env.E2E_LOG_DIR) fixtureArgs.push("--secrets", join(process.env.E2E_LOG_DIR, "secrets.txt"));
  admin(env, ...fixtureArgs);

  // The Runtime API (cargo lambda) and the function polling it, like Lambda runs bootstrap.
  const rtPort = await freePort();
  group.start(`invoke-emulator`, cargoLambda, ["lambda", "watch", "--only-lambda-apis", "--invoke-address", "127.0.0.1", "--invoke-port", String(rtPort)], {});
  await waitFor("the cargo lambda Runtime API", () => new Promise((res) => {
    const s = createConnection(rtPort, "127.0.0.1", () => { s.end(); res(true); });
    s.on("error", () => res(false));
  }), 60000);
  const fnLog = join(logDir, `invoke-${fn}.log`);
  const logFrom = existsSync(fnLog) ? statSync(fnLog).size : 0;
  const fnProc = group.start(`invoke-${fn}`, command[0], command.slice(1), {
    ...env,
    // With --only-lambda-apis the emulator serves one function, named "_".
    AWS_LAMBDA_RUNTIME_API: `http://127.0.0.1:${rtPort}/.rt`,
    AWS_LAMBDA_FUNCTION_NAME: "_",
    AWS_LAMBDA_FUNCTION_VERSION: "1",
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: "1769",
  });

  // A function that dies (a broken bootstrap) fails the invoke at once, with its log's end.
  const fnExit = new Promise((res) => fnProc.on("exit", (code, sig) => res(code ?? sig)));
  const died = (how) => {
    const log = readFileSync(fnLog).subarray(logFrom).toString("utf8").trim().slice(-1500);
    return new Error(`the function exited (${how}) before it answered; its log (${fnLog}): ${log ? `\n${log}` : "empty"}`);
  };

  const mailsBefore = expected.to ? (await mailsTo(sesUrl, expected.to)).length : 0;

  const repeat = expected.repeat || 1;
  // Repeated requests count into fixed windows (per IP: 60 s; failed logins: 15 min). A
  // run that straddled a window's end would start counting again and miss the limit, so
  // start with at least 30 s left in both.
  if (repeat > 1) {
    const left = (w) => w - ((Date.now() / 1000) % w);
    while (left(60) < 30 || left(900) < 30) await sleep(1000);
  }
  const text = readFileSync(resolved, "utf8");
  let out;
  for (let i = 0; i < repeat; i++) {
    let payload = resolved;
    if (expected.vary_email) {
      payload = join(workDir, `${fn}-${i}-${basename(eventPath)}`);
      writeFileSync(payload, text.replaceAll("member@example.com", `member${i}@example.com`));
    }
    let child;
    const call = new Promise((res) => {
      child = execFile(cargoLambda, ["lambda", "invoke", "--invoke-address", "127.0.0.1", "--invoke-port", String(rtPort), "--data-file", payload, "--output-format", "json", "_"], { cwd: ROOT, encoding: "utf8", timeout: 60000 }, (err, stdout, stderr) => res({ status: err ? 1 : 0, stdout, stderr }));
    });
    const r = await Promise.race([call, fnExit.then((how) => ({ died: how }))]);
    if ("died" in r) {
      child.kill("SIGKILL");
      throw died(r.died);
    }
    if (r.status !== 0) throw new Error(`cargo lambda invoke failed: ${r.stderr || r.stdout}`);
    out = JSON.parse(r.stdout);
  }
  console.log(JSON.stringify(out, null, 2));

  // Compare with the expected file: the same Rust comparator as the replay tests
  // (testkit::verdict, through `contact-auth-admin verdict`).
  const responseFile = join(workDir, `${fn}-${basename(eventPath)}.response.json`);
  writeFileSync(responseFile, JSON.stringify(out));
  const verdictArgs = ["verdict", "--expected", expectedPath, "--response", responseFile];
  if (fn === "mailer") {
    await sleep(100);
    const mailsFile = join(workDir, `${fn}-${basename(eventPath)}.mails.json`);
    writeFileSync(mailsFile, JSON.stringify((await mailsTo(sesUrl, expected.to)).slice(mailsBefore)));
    verdictArgs.push("--mails", mailsFile);
  } else if (fn === "ses-events" || fn === "events") {
    verdictArgs.push("--event");
  }
  const v = spawnSync(join(BIN, "contact-auth-admin"), verdictArgs, { cwd: ROOT, encoding: "utf8" });
  if (v.status !== 0) {
    console.error(`invoke ${fn} ${eventArg}: ${(v.stderr || v.stdout).trim()}`);
    return 1;
  }
  const what = fn === "mailer" ? `${expected.emails} mail(s) to ${expected.to}`
    : fn === "ses-events" || fn === "events" ? `result ${JSON.stringify(expected.body)}`
    : `status ${expected.status}${expected.code ? ` ${expected.code}` : ""}`;
  console.log(`invoke ${fn} ${eventArg}: ok (${what}, as expected)`);
  return 0;
}

let code = 1;
try {
  code = await main();
} catch (e) {
  console.error(`invoke ${fn} ${eventArg}: ${e.message}`);
} finally {
  await group.stop();
}
process.exit(code);
