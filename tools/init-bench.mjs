#!/usr/bin/env node
// Init time of function binaries: from process start to the first poll of the Runtime
// API's `/next` (what Lambda bills as init), against a fake Runtime API on 127.0.0.1.
// Run by `make bench` on release builds of this machine's architecture.

import { createServer } from "node:http";
import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "./stack.mjs";

const TARGET = process.env.CARGO_TARGET_DIR || join(ROOT, "target");
const FUNCTIONS = (process.argv[2] || "hosted-page,jwks,register,login,mailer").split(",");
const RUNS = Number(process.env.INIT_RUNS || 25);
const keyFile = join(ROOT, ".dev", "signing-key.json");
spawnSync(join(TARGET, "release", "contact-auth-admin"), ["dev-key", "--out", keyFile], { stdio: "ignore" });

let waiting = null;
const server = createServer((req, res) => {
  if (req.url.endsWith("/invocation/next") && waiting) {
    waiting(process.hrtime.bigint());
    waiting = null;
  }
  // Never answer: the function stays in its poll until it is killed.
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const api = `127.0.0.1:${server.address().port}`;

const env = {
  ...process.env,
  AWS_LAMBDA_RUNTIME_API: api,
  AWS_LAMBDA_FUNCTION_NAME: "bench", AWS_LAMBDA_FUNCTION_MEMORY_SIZE: "256", AWS_LAMBDA_FUNCTION_VERSION: "1",
  AWS_REGION: "eu-west-1", AWS_ACCESS_KEY_ID: "x", AWS_SECRET_ACCESS_KEY: "x", AWS_EC2_METADATA_DISABLED: "true",
  TABLE_NAME: "bench", SIGNING_KEY_FILE: keyFile, LOG_LEVEL: "error",
};

console.log(`init time: process start to first /next, ${RUNS} runs each`);
for (const fn of FUNCTIONS) {
  const times = [];
  for (let i = 0; i < RUNS; i++) {
    const polled = new Promise((r) => { waiting = r; });
    const t0 = process.hrtime.bigint();
    const p = spawn(join(TARGET, "release", fn), [], { env, stdio: "ignore" });
    const t1 = await Promise.race([polled, new Promise((r) => setTimeout(() => r(null), 5000))]);
    p.kill("SIGKILL");
    await new Promise((r) => p.once("exit", r));
    if (t1 === null) { console.log(`${fn}: no /next poll within 5 s`); break; }
    times.push(Number(t1 - t0) / 1e6);
  }
  if (!times.length) continue;
  times.sort((a, b) => a - b);
  const med = times[Math.floor(times.length / 2)];
  console.log(`${fn.padEnd(14)} median ${med.toFixed(1).padStart(6)} ms   min ${times[0].toFixed(1).padStart(6)} ms   max ${times[times.length - 1].toFixed(1).padStart(6)} ms`);
}
server.close();
