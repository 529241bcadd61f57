#!/usr/bin/env node
// `make cost`: measures, per route, the DynamoDB capacity units and the CPU time of one
// request, and writes docs/cost.md — the monthly cost of 1,000 and 100,000 active members
// under the usage profile and prices in docs/cost-inputs.json, beside hosted alternatives.
//
// Measured here: each fixture that docs/cost-inputs.json names runs through the fixture
// replay (tests/replay.rs, release build) against DynamoDB Local; with REPLAY_COST_OUT set
// the replay asks DynamoDB for the consumed capacity of every call of the measured request
// (testkit::capacity::CapacityMeter) and reads the CPU time its thread used; RUNS runs per
// fixture, medians. Also counted: the EMF metrics the functions publish and the bytes they
// log. Modelled (labelled so in the output): arm64 Lambda duration at the template's memory
// sizes, from the measured x86 CPU time.

import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { ROOT, freePort, processGroup, startServices } from "./stack.mjs";

const RUNS = Number(process.env.COST_RUNS || 5);
const inputs = JSON.parse(readFileSync(join(ROOT, "docs", "cost-inputs.json"), "utf8"));
const P = inputs.prices;
const logDir = join(ROOT, ".dev", "cost");
rmSync(logDir, { recursive: true, force: true });
mkdirSync(logDir, { recursive: true });
const out = join(logDir, "cost.jsonl");
const replayLog = join(logDir, "replay.log");

const usage = [
  ...inputs.usage.per_member_month.map((u) => ({ ...u, share: 1 })),
  ...inputs.usage.per_new_member.map((u) => ({ ...u, share: inputs.usage.new_members_share })),
];
const fixtures = [...new Set(usage.map((u) => u.fixture))];

// Memory size per function (crate), from template.yaml (tools/cfn.py).
const memory = Object.fromEntries(Object.values(JSON.parse(spawnSync(join(ROOT, ".venv", "bin", "python"),
  [join(ROOT, "tools", "cfn.py"), "functions"], { cwd: ROOT, encoding: "utf8" }).stdout)).map((f) => [f.crate, f.memory]));

console.log("== building the replay (release) ==");
let r = spawnSync("cargo", ["test", "--release", "-p", "integration-tests", "--test", "replay", "--no-run"], { cwd: ROOT, stdio: "inherit" });
if (r.status !== 0) process.exit(1);

const group = processGroup(logDir);
let emfLines = [];
try {
  const { ddbUrl, sesUrl, sesGateUrl } = await startServices(group, await freePort(), await freePort());
  const env = { ...process.env, REPLAY_DYNAMODB_URL: ddbUrl, REPLAY_SES_URL: sesUrl, REPLAY_SES_GATE_URL: sesGateUrl, REPLAY_COST_OUT: out, REPLAY_LOG: replayLog };
  for (let run = 1; run <= RUNS; run++) {
    for (const f of fixtures) {
      r = spawnSync("cargo", ["test", "--release", "-p", "integration-tests", "--test", "replay", "--", "--include-ignored", "--exact", `events/${f}`],
        { cwd: ROOT, env, encoding: "utf8", maxBuffer: 64 << 20 });
      if (r.status !== 0 || !/1 passed/.test(r.stdout)) {
        console.error(r.stdout.slice(-2000), r.stderr.slice(-2000));
        throw new Error(`replay of ${f} failed`);
      }
      // EMF lines (libtest-mimic prints them after the test's name on the same line).
      for (const line of r.stdout.split("\n")) {
        const at = line.indexOf('{"');
        if (at >= 0 && line.includes('"_aws":')) emfLines.push(line.slice(at));
      }
    }
    console.log(`run ${run} of ${RUNS}: ${fixtures.length} fixtures`);
  }
} finally {
  await group.stop();
}

// Medians per fixture.
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const records = readFileSync(out, "utf8").trim().split("\n").map((l) => JSON.parse(l));
const measured = {};
for (const f of fixtures) {
  const rs = records.filter((x) => x.fixture === f);
  if (!rs.length) throw new Error(`no measurement for ${f}`);
  measured[f] = {
    route: rs[0].function, status: rs[0].status, runs: rs.length,
    cpu_ms: median(rs.map((x) => x.cpu_ms)), read_units: median(rs.map((x) => x.read_units)),
    write_units: median(rs.map((x) => x.write_units)), calls: median(rs.map((x) => x.calls)),
    log_bytes: median(rs.map((x) => x.log_bytes)),
  };
}
// EMF: every (metric, dimension values) pair is one custom metric; request lines give the
// average EMF bytes per request.
const metricKeys = new Set();
let requestLines = 0, emfBytes = 0;
for (const line of emfLines) {
  const doc = JSON.parse(line);
  emfBytes += line.length + 1;
  for (const d of doc._aws.CloudWatchMetrics) {
    for (const m of d.Metrics) {
      if (m.Name === "RequestLatency" || m.Name === "JobLatency") requestLines++;
      for (const dims of d.Dimensions) metricKeys.add(`${m.Name}|${dims.map((k) => `${k}=${doc[k]}`).join(",")}`);
    }
  }
}
const emfPerRequest = requestLines ? emfBytes / requestLines : 0;

// The model.
const fullVcpu = inputs.model.full_vcpu_mb;
const durationMs = (m, depMs) => {
  const mem = memory[m.route] ?? 256;
  return Math.max(1, Math.ceil(m.cpu_ms * Math.max(1, fullVcpu / mem) + m.calls * depMs));
};
const money = (x) => x < 0.01 && x > 0 ? `$${x.toFixed(4)}` : `$${x.toFixed(2)}`;
function monthly(members, depMs) {
  const c = { lambda_requests: 0, lambda_gbs: 0, ddb_read: 0, ddb_write: 0, api: 0, mails: 0, logs_gb: 0 };
  for (const u of usage) {
    const n = members * u.share * u.count;
    const m = measured[u.fixture];
    c.lambda_requests += n;
    c.lambda_gbs += n * ((memory[m.route] ?? 256) / 1024) * (durationMs(m, depMs) / 1000);
    c.ddb_read += n * m.read_units;
    c.ddb_write += n * m.write_units;
    if (u.route !== "mailer") c.api += n;
    c.mails += members * u.share * (u.mails || 0);
    c.logs_gb += n * (m.log_bytes + emfPerRequest) / 1e9;
  }
  const secretCalls = inputs.model.key_functions_warm * (30 * 24 * 3600 / inputs.model.secrets_refresh_seconds);
  const lines = {
    "Lambda requests": c.lambda_requests * P.lambda_request.usd,
    "Lambda duration (model)": c.lambda_gbs * P.lambda_arm_gb_second.usd,
    "DynamoDB reads": c.ddb_read * P.dynamodb_rru.usd,
    "DynamoDB writes": c.ddb_write * P.dynamodb_wru.usd,
    "API Gateway HTTP API": c.api * P.api_gateway_http_request.usd,
    "SES (à la carte)": c.mails * P.ses_message_a_la_carte.usd,
    "Secrets Manager (1 secret + rereads)": P.secrets_manager_secret_month.usd + secretCalls * P.secrets_manager_call.usd,
    "CloudWatch custom metrics (EMF)": metricKeys.size * P.cloudwatch_custom_metric_month.usd,
    "CloudWatch Logs ingestion": c.logs_gb * P.cloudwatch_log_gb.usd,
  };
  return { counts: c, lines, total: Object.values(lines).reduce((a, b) => a + b, 0), secretCalls };
}

const peers = inputs.peers;
const peer = (members) => [
  [peers.cognito_essentials.label, Math.max(0, members - peers.cognito_essentials.free_mau) * peers.cognito_essentials.usd_per_mau],
  [peers.cognito_lite.label, Math.max(0, members - peers.cognito_lite.free_mau) * peers.cognito_lite.usd_per_mau],
  [peers.clerk_pro.label, peers.clerk_pro.base_usd + Math.max(0, members - peers.clerk_pro.included) * peers.clerk_pro.usd_per_user],
  [peers.auth0_b2c_essentials.label, members === 1000 ? peers.auth0_b2c_essentials.at_1000 : peers.auth0_b2c_essentials.at_100000],
];

const cpu = spawnSync("sh", ["-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2; nproc"], { encoding: "utf8" }).stdout.trim().split("\n");
const today = new Date().toISOString().slice(0, 10);
const [dep0, dep1] = inputs.model.dependency_ms_per_call;
let md = `# What contact-auth costs to run

Generated by \`make cost\` (\`tools/cost.mjs\`) on ${today}, on this machine (${cpu[0].trim()}, ${cpu[1]} cores); inputs
in \`docs/cost-inputs.json\`. Region ${inputs.region}. Rerun after a change to the code, the usage profile or a price.

**Measured here** (medians of ${RUNS} runs, release build, x86_64, against DynamoDB Local): the DynamoDB
capacity each request consumes (DynamoDB's own \`ConsumedCapacity\`, asked for on every call; for a
transaction, which DynamoDB Local under-reports, 2 units per item and started KB counted from the
request: \`testkit/src/capacity.rs\`), the
CPU time of the thread that served it (the handler, the AWS SDK and its HTTP client; TLS is not in
it, the local endpoints are plain HTTP), the bytes it logs, and the custom metrics the functions
publish. **Modelled** (no AWS here): arm64 Lambda duration at the template's memory sizes =
CPU time × max(1, ${fullVcpu} MB ÷ memory) — Lambda gives a function CPU in proportion to its
memory, one vCPU at ${fullVcpu} MB (${inputs.model.full_vcpu_mb_source}) — plus an assumed
round trip per DynamoDB/SES call, shown at ${dep0} and ${dep1} ms; x86 and Graviton CPU time are
taken as equal. **Stated, not measured:** the usage profile. **Left out:** data transfer, DynamoDB
storage (a member is a few KB: 100,000 members are well inside the 25 GB free), Lambda's own
START/END/REPORT log lines, free tiers (all prices below are without them).

## Per request (measured)

| route (fixture) | memory | CPU ms | DynamoDB calls | read units | write units | log bytes | modelled billed ms (${dep0} / ${dep1} ms per call) |
|---|---|---|---|---|---|---|---|
`;
for (const [f, m] of Object.entries(measured)) {
  md += `| ${m.route} (\`${f}\`) | ${memory[m.route] ?? "?"} MB | ${m.cpu_ms.toFixed(2)} | ${m.calls} | ${m.read_units} | ${m.write_units} | ${Math.round(m.log_bytes + emfPerRequest)} | ${durationMs(m, dep0)} / ${durationMs(m, dep1)} |\n`;
}
md += `
Custom metrics published in these runs: **${metricKeys.size}** (metric × dimension values; refusals
add a few more: \`FailedLogins\`, \`RateLimited\` by limit). EMF adds ${Math.round(emfPerRequest)} bytes per request on average.
They are a fixed cost whatever the traffic — the largest line of a small stack (the CloudWatch free
tier of 10 metrics is not subtracted); each metric is one (name, function[, method/limit/kind]).

## Usage profile (stated)

Per active member and month${inputs.usage.new_members_share ? `; a share of ${inputs.usage.new_members_share * 100} % of them are new that month` : ""}:

| what | route | count |
|---|---|---|
`;
for (const u of usage) md += `| ${u.what}${u.share !== 1 ? " (new members)" : ""} | ${u.route} | ${u.count} |\n`;

for (const members of [1000, 100000]) {
  const a = monthly(members, dep0), b = monthly(members, dep1);
  md += `
## ${members.toLocaleString("en-US")} monthly active members

| line | $/month (${dep0} ms per call) | $/month (${dep1} ms per call) |
|---|---|---|
`;
  for (const k of Object.keys(a.lines)) md += `| ${k} | ${money(a.lines[k])} | ${money(b.lines[k])} |\n`;
  md += `| **total** | **${money(a.total)}** | **${money(b.total)}** |\n| per member | ${money(a.total / members)} | ${money(b.total / members)} |\n`;
  md += `\nVolumes: ${Math.round(a.counts.lambda_requests).toLocaleString("en-US")} invocations, ${Math.round(a.counts.ddb_read).toLocaleString("en-US")} read and ${Math.round(a.counts.ddb_write).toLocaleString("en-US")} write units, ${Math.round(a.counts.mails).toLocaleString("en-US")} mails, ${a.counts.lambda_gbs.toFixed(0)}–${b.counts.lambda_gbs.toFixed(0)} GB-s; Secrets Manager rereads modelled as ${inputs.model.key_functions_warm} warm instances rereading every ${inputs.model.secrets_refresh_seconds} s all month (${Math.round(a.secretCalls).toLocaleString("en-US")} calls, an upper bound). SES on the Essentials plan (new accounts since 2026-07-21) would be ${money(a.counts.mails * P.ses_message_essentials.usd)} instead.\n`;
  md += `\nHosted alternatives for the same ${members.toLocaleString("en-US")} members (published prices; their feature sets differ):\n\n| service | $/month |\n|---|---|\n`;
  for (const [label, usd] of peer(members)) md += `| ${label} | ${usd === null || usd === undefined ? "no published price" : money(usd)} |\n`;
}

md += `
## Prices used

| price | value | unit | source | date | kind |
|---|---|---|---|---|---|
`;
for (const [k, p] of Object.entries(P)) md += `| ${k} | $${p.usd} | ${p.unit} | ${p.source} | ${p.date} | ${p.kind} |\n`;
md += `\nHosted alternatives:\n\n`;
for (const [k, p] of Object.entries(peers)) if (k !== "_about") md += `- ${p.label}: ${p.source} (${p.date}).\n`;
md += `
Why most AWS prices are secondary: the stored copies of the AWS pricing pages reachable here
render their tables with JavaScript and show none; the figures come from AWS's own Price List
feed as other repositories retrieved it (named above, with the date they give).
`;

writeFileSync(join(ROOT, "docs", "cost.md"), md);
console.log(md);
console.log("wrote docs/cost.md");
