// Checks the CloudWatch Embedded Metric Format lines the functions wrote during a test run
// (shared/src/metrics.rs): every line that carries `_aws` must be a valid EMF document —
// Timestamp in ms, every metric of a directive a top-level number, every dimension a
// top-level string — with dimension values only from the known low-cardinality sets, and
// the run must have produced the metrics an operator relies on.
// Spec: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html

import { readFileSync } from "node:fs";

const DIMENSION_VALUES = {
  Method: ["magic_link", "otp", "pwd"],
  Limit: ["send", "login", "code", "new_address_mail", "sign_in_mail"],
  // MailFailures{Kind} (SES send errors) and SesEvents{Kind} (bounces and complaints).
  Kind: ["permanent", "transient", "throttled", "paused", "bounce_permanent", "bounce_transient", "complaint", "other", "malformed"],
  Outcome: ["sent", "notice", "nothing", "dropped", "limited", "expired", "parked", "suppressed", "already_done", "failed"],
  // AuthEvents{Webhook} (the events function: handlers::events::WebhookResult, bus_failed).
  Webhook: ["none", "already_done", "delivered", "rejected", "failed", "refused", "paused", "bus_failed"],
};
const FUNCTION = /^[a-z][a-z-]{1,30}$/;
// `WrongCodes` by hub: a hub id the table holds (set by the admin CLI), or `none`.
const HUB = /^[A-Za-z0-9_-]{1,64}$/;

/** Problems with one parsed document ([] when valid). */
export function emfProblems(d) {
  const p = [];
  const aws = d._aws;
  if (!aws || typeof aws !== "object") return ["no _aws object"];
  if (!Number.isInteger(aws.Timestamp) || aws.Timestamp < 1e12) p.push("Timestamp is not epoch ms");
  if (!Array.isArray(aws.CloudWatchMetrics) || aws.CloudWatchMetrics.length === 0) return [...p, "no CloudWatchMetrics"];
  for (const dir of aws.CloudWatchMetrics) {
    if (typeof dir.Namespace !== "string" || !dir.Namespace) p.push("no Namespace");
    if (!Array.isArray(dir.Dimensions)) p.push("no Dimensions");
    for (const set of dir.Dimensions || []) {
      if (!Array.isArray(set) || set.length > 30) p.push("bad dimension set");
      for (const name of set) {
        if (typeof d[name] !== "string") p.push(`dimension ${name} is not a top-level string`);
        else if (name === "Function" && !FUNCTION.test(d[name])) p.push(`Function ${d[name]}`);
        else if (name === "Hub" && !HUB.test(d[name])) p.push(`Hub ${d[name]}`);
        else if (name === "Hub") continue;
        else if (DIMENSION_VALUES[name] && !DIMENSION_VALUES[name].includes(d[name])) p.push(`${name}=${d[name]} is not a known value`);
        else if (name !== "Function" && !DIMENSION_VALUES[name]) p.push(`unknown dimension ${name}`);
      }
    }
    if (!Array.isArray(dir.Metrics) || dir.Metrics.length === 0 || dir.Metrics.length > 100) p.push("1-100 metrics");
    for (const m of dir.Metrics || []) {
      if (typeof m.Name !== "string" || typeof d[m.Name] !== "number" || !Number.isFinite(d[m.Name])) p.push(`metric ${m.Name} is not a top-level number`);
      if (!["Count", "Milliseconds"].includes(m.Unit)) p.push(`metric ${m.Name} unit ${m.Unit}`);
    }
  }
  return p;
}

/** Reads the logs; returns { lines, problems, seen } where seen is a set of "Metric[/Dim=value]". */
export function checkLogs(paths) {
  let lines = 0;
  const problems = [];
  const seen = new Set();
  for (const path of paths) {
    for (const line of readFileSync(path, "utf8").split("\n")) {
      if (!line.includes('"_aws"')) continue;
      lines++;
      let d;
      try {
        d = JSON.parse(line.slice(line.indexOf("{")));
      } catch {
        problems.push(`${path}: not one JSON object per line`);
        continue;
      }
      for (const e of emfProblems(d)) problems.push(`${path}: ${e}`);
      for (const dir of d._aws?.CloudWatchMetrics || []) {
        for (const m of dir.Metrics || []) {
          seen.add(m.Name);
          for (const k of Object.keys(DIMENSION_VALUES)) if (typeof d[k] === "string") seen.add(`${m.Name}/${k}=${d[k]}`);
          if (m.Name === "DynamoDbCalls" && d.DynamoDbCalls > 0) seen.add("DynamoDbCalls>0");
          if (m.Name === "SesCalls" && d.SesCalls > 0) seen.add("SesCalls>0");
          if (typeof d.Hub === "string") seen.add(`${m.Name}/Hub=${d.Hub}`);
        }
      }
    }
  }
  return { lines, problems, seen };
}

/** What a full test run must have produced. */
export const EXPECTED = [
  "RequestLatency", "ServerErrors", "DynamoDbCalls>0", "SesCalls>0", "JobLatency",
  "SignIns/Method=magic_link", "SignIns/Method=otp", "SignIns/Method=pwd", "Registrations",
  "FailedLogins/Method=pwd", "FailedLogins/Method=otp", "RateLimited/Limit=send",
  "RateLimited/Limit=login", "RateLimited/Limit=code", "RefreshReuseDetected", "MailsSent",
  "MailJobs/Outcome=sent", "WrongCodes",
  // ses-events through `make invoke` (tests/e2e/invoke.test.mjs runs each of its fixtures).
  "SesEvents/Kind=bounce_permanent", "SesEvents/Kind=complaint",
  // The events function (the local dev-events and make invoke): a team with a webhook
  // (tests/e2e/events.test.mjs) and without one.
  "AuthEvents/Webhook=delivered", "AuthEvents/Webhook=none",
];
