#!/usr/bin/env node
// `make load`: the newsletter-day flash crowd against a local stack (issue 18). Not a
// timing test: it asserts only that no job is lost, and prints figures to compare runs.
//
// The stack: DynamoDB Local, the SES sink behind the SES gate (tools/ses-gate.mjs: SES's
// send rate, SES_RATE a second, TooManyRequests beyond), the local mailer (the deployed
// mailer's process_records: concurrent jobs, the send-rate governor set just under the
// gate), and `cargo lambda watch` with 4 instances per function — all with the deployed
// defaults for every limit.
//
// The crowd: MEMBERS members of one hub (member-academy). NAT_SHARE of them sit behind one
// office NAT (127.0.0.1); every other one has its own address (127.0.1.x, 127.0.2.x, …:
// the whole 127/8 is loopback on Linux, so requests really come from those addresses).
// They ask for a sign-in link at ARRIVAL requests a second, then each consumes the link in
// their mail. Reported: requests/s and p50/p99 latency per route, mails/s, time from the
// first request to the last mail, false 429s (every member asks once, so every 429 is
// false), jobs lost (a 202 without a mail and without a job left in the table: must be 0),
// and the source addresses the service counted (from its per-IP counters).
//
//   make load                     MEMBERS=1000 NAT_SHARE=0.5 ARRIVAL=25 SES_RATE=14
//   MEMBERS=300 make load         a smaller crowd
//   TRUST=127.0.0.0/16 make load  the hub trusts the crowd's egress network
//
// `cargo lambda watch` gives every request the same source address, whatever address the
// client binds (the report's source_addresses_counted says so), so locally the whole
// crowd is one office NAT: the run without TRUST shows the per-IP ceiling at work, the run
// with it shows a trusted network.

import { request as httpRequest } from "node:http";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { startStack, setGate, sleep, ROOT } from "./stack.mjs";

const MEMBERS = Number(process.env.MEMBERS || 1000);
const NAT_SHARE = Number(process.env.NAT_SHARE || 0.5);
const ARRIVAL = Number(process.env.ARRIVAL || 25);
const SES_RATE = Number(process.env.SES_RATE || 14);
const PREFIX = `load${Date.now().toString(36)}`;
// TRUST=<cidr>: the hub trusts this egress network (contact-auth-admin trusted-networks).
const TRUST = process.env.TRUST || "";
const API = "/api/v1/contact-auth";

/** One POST from `localAddress`: [status, ms, body]. */
function post(apiUrl, path, body, localAddress) {
  const url = new URL(apiUrl + path);
  const data = JSON.stringify(body);
  return new Promise((resolve) => {
    const started = performance.now();
    const req = httpRequest({
      host: url.hostname, port: url.port, path: url.pathname, method: "POST", localAddress,
      headers: { "content-type": "application/vnd.api+json", "content-length": Buffer.byteLength(data) },
    }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve([res.statusCode, performance.now() - started, Buffer.concat(chunks).toString()]));
    });
    req.on("error", (e) => resolve([0, performance.now() - started, e.message]));
    req.end(data);
  });
}

const pct = (xs, p) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

/** Address of member `i`: the NAT for the first NAT_SHARE, else its own loopback address. */
function addressOf(i) {
  if (i < MEMBERS * NAT_SHARE) return "127.0.0.1";
  const n = i + 256; // 127.0.1.0 onwards
  return `127.0.${Math.floor(n / 250)}.${(n % 250) + 2}`;
}

async function mailsByRecipient(sesUrl) {
  const { emails } = await (await fetch(`${sesUrl}/store`)).json();
  const by = new Map();
  for (const m of emails || []) {
    for (const to of m.destination?.to || []) {
      if (to.startsWith(PREFIX)) by.set(to, m);
    }
  }
  return by;
}

/** Every item whose pk starts with `prefix` (a scan of DynamoDB Local's table). */
async function scan(stack, prefix) {
  const items = [];
  let start;
  do {
    const r = await fetch(stack.ddbUrl, {
      method: "POST",
      headers: {
        "x-amz-target": "DynamoDB_20120810.Scan",
        "content-type": "application/x-amz-json-1.0",
        // DynamoDB Local reads the credential, not the signature.
        authorization: "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
      },
      body: JSON.stringify({
        TableName: stack.table, FilterExpression: "begins_with(pk, :p)",
        ExpressionAttributeValues: { ":p": { S: prefix } }, ExclusiveStartKey: start,
      }),
    });
    const page = await r.json();
    items.push(...(page.Items || []));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

function tokenOf(mail) {
  const text = mail?.body?.text || "";
  const m = text.match(/#token=([A-Za-z0-9_-]+)/);
  return m && m[1];
}

async function main() {
  const stack = await startStack({
    concurrency: 4,
    sesRate: SES_RATE,
    logDir: join(ROOT, ".dev", "load-logs"),
    table: `load-${Date.now().toString(36)}`,
    // The governor a little under the gate's rate (as a deployment sets SES_MAX_SEND_RATE
    // at or under its account's rate); LOG_LEVEL warn keeps 4 instances' logs small.
    env: { SES_MAX_SEND_RATE: String(Math.max(1, SES_RATE - 1)), LOG_LEVEL: "warn" },
  });
  try {
    console.log(`[load] seeding ${MEMBERS} members…`);
    stack.admin("seed-members", "--count", String(MEMBERS), "--prefix", PREFIX);
    if (TRUST) stack.admin("trusted-networks", "--slug", "member-academy", "--set", TRUST);
    // Warm every instance of the two routes first (4 each): cold starts are not the crowd.
    await Promise.all(Array.from({ length: 8 }, () => post(stack.apiUrl, `${API}/magic`, {}, "127.0.0.1")));
    await Promise.all(Array.from({ length: 8 }, () => post(stack.apiUrl, `${API}/magic/consume`, {}, "127.0.0.1")));
    const before = await mailsByRecipient(stack.sesUrl);
    await setGate(stack.sesGateUrl, { reset: true });

    console.log(`[load] ${MEMBERS} sign-in requests at ${ARRIVAL}/s, ${Math.round(MEMBERS * NAT_SHARE)} from one NAT…`);
    const magic = [];
    const t0 = performance.now();
    const pending = [];
    for (let i = 0; i < MEMBERS; i++) {
      const due = t0 + (i * 1000) / ARRIVAL;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      const email = `${PREFIX}-${i}@example.com`;
      pending.push(post(stack.apiUrl, `${API}/magic`, { data: { type: "magic_link_requests", attributes: { email, slug: "member-academy" } } }, addressOf(i))
        .then(([status, ms]) => magic.push({ i, email, status, ms })));
    }
    await Promise.all(pending);
    const requestSpan = (performance.now() - t0) / 1000;
    const accepted = magic.filter((r) => r.status === 202);

    // Wait for the mail: until every accepted request has one, or nothing new for 60 s.
    let got = new Map();
    let lastCount = -1;
    let lastChange = performance.now();
    let lastMailAt = t0;
    while (true) {
      got = await mailsByRecipient(stack.sesUrl);
      for (const k of before.keys()) got.delete(k);
      if (got.size !== lastCount) {
        lastCount = got.size;
        lastChange = performance.now();
        lastMailAt = performance.now();
      }
      if (got.size >= accepted.length || performance.now() - lastChange > 60000) break;
      await sleep(500);
    }
    const toLastMail = (lastMailAt - t0) / 1000;
    const gate = await setGate(stack.sesGateUrl, {});
    const jobsLeft = (await scan(stack, "JOB#")).length;
    const ipsSeen = [...new Set((await scan(stack, "RATE#ip#")).map((i) => i.pk.S.split("#")[2]))];

    // Every member consumes their link.
    console.log(`[load] ${got.size} mails; consuming the links…`);
    const consume = [];
    const c0 = performance.now();
    const consumes = [];
    for (const r of accepted) {
      const token = tokenOf(got.get(r.email));
      if (!token) continue;
      const due = c0 + (consumes.length * 1000) / ARRIVAL;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      consumes.push(post(stack.apiUrl, `${API}/magic/consume`, { data: { type: "magic_link_consumes", attributes: { token } } }, addressOf(r.i))
        .then(([status, ms]) => consume.push({ status, ms })));
    }
    await Promise.all(consumes);
    const consumeSpan = (performance.now() - c0) / 1000;

    const false429 = magic.filter((r) => r.status === 429).length;
    const other = magic.filter((r) => ![202, 429].includes(r.status)).length;
    const lost = accepted.filter((r) => !got.has(r.email)).length - jobsLeft;
    const cpu = cpus()[0]?.model?.trim() || "unknown CPU";
    const machine = `${cpus().length} vCPU ${cpu}, ${Math.round(totalmem() / 2 ** 30)} GB`;
    const seconds = Object.values(gate.perSecond || {});
    const report = {
      date: new Date().toISOString().slice(0, 10),
      machine,
      members: MEMBERS,
      nat: Math.round(MEMBERS * NAT_SHARE),
      trusted_network: TRUST || null,
      source_addresses_counted: ipsSeen.length,
      source_addresses_sample: ipsSeen.slice(0, 3),
      magic: { requests: magic.length, per_s: +(magic.length / requestSpan).toFixed(1), p50_ms: Math.round(pct(magic.map((r) => r.ms), 50)), p99_ms: Math.round(pct(magic.map((r) => r.ms), 99)), accepted: accepted.length, false_429: false429, other_errors: other },
      mail: { sent: got.size, per_s: +(got.size / toLastMail).toFixed(1), first_request_to_last_mail_s: +toLastMail.toFixed(1), ses_accepted: gate.accepted, ses_throttled: gate.throttled, busiest_second: Math.max(0, ...seconds) },
      consume: { requests: consume.length, per_s: +(consume.length / consumeSpan).toFixed(1), p50_ms: Math.round(pct(consume.map((r) => r.ms), 50)), p99_ms: Math.round(pct(consume.map((r) => r.ms), 99)), ok: consume.filter((r) => r.status === 200).length },
      jobs_left: jobsLeft,
      jobs_lost: lost,
    };
    console.log(JSON.stringify(report, null, 2));
    if (lost !== 0) {
      console.error(`[load] ${lost} jobs lost`);
      process.exitCode = 1;
    }
  } finally {
    await stack.stop();
  }
}

main().catch((e) => {
  console.error(`[load] ${e.stack || e.message}`);
  process.exit(1);
});
