// Mutation testing of the DynamoDB condition expressions (`make mutants-conditions`).
//
// cargo-mutants mutates Rust code, not the string literals DynamoDB evaluates, and most of
// this service's safety lives in those strings: "unused and unexpired", "still the newest
// link", "token version unchanged", "under the limit". This tool mutates each clause of
// every `.condition_expression(...)` literal in shared/src/adapters/dynamo/*.rs so that the
// clause no longer decides — in a conjunction the clause becomes always true, in a
// disjunction always false, a single clause always true — keeping every placeholder in
// use (so DynamoDB does not refuse the request for an unused value and "catch" the mutant
// for the wrong reason). Each mutant is built and judged by the fixture replay (the real
// handlers against DynamoDB Local and the SES sink); a mutant that the replay does not
// fail is "missed". The source is restored after every mutant (and on Ctrl-C).
//
// Usage: node tools/condition-mutants.mjs [substring of a file name]   (results in
// mutants.out/conditions.txt). Do not edit sources while it runs: it mutates them in place.

import { readFileSync, writeFileSync, readdirSync, mkdirSync, appendFileSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { ROOT, freePort, processGroup, startServices } from "./stack.mjs";

const DIR = join(ROOT, "shared", "src", "adapters", "dynamo");
const OUT = join(ROOT, "mutants.out");
const LOG = join(OUT, "conditions.txt");
const only = process.argv[2];

const TRUE = (c) => `(${c} OR attribute_exists(pk) OR attribute_not_exists(pk))`;
const FALSE = (c) => `(${c} AND attribute_exists(pk) AND attribute_not_exists(pk))`;

/** `expr` split at `sep` outside parentheses. */
function splitTop(expr, sep) {
  const parts = [];
  let depth = 0;
  let from = 0;
  for (let i = 0; i < expr.length; i++) {
    if (expr[i] === "(") depth++;
    else if (expr[i] === ")") depth--;
    else if (depth === 0 && expr.startsWith(sep, i)) {
      parts.push(expr.slice(from, i));
      from = i + sep.length;
      i += sep.length - 1;
    }
  }
  parts.push(expr.slice(from));
  return parts;
}

/** The mutants of one condition literal: [description, new literal, clause]. */
export function mutantsOf(expr) {
  const and = splitTop(expr, " AND ");
  const or = splitTop(expr, " OR ");
  if (and.length > 1 && or.length > 1) return []; // mixed at the top level: none here
  if (and.length > 1) return and.map((c, i) => [`"${c}" always true`, and.map((x, j) => (i === j ? TRUE(x) : x)).join(" AND "), c]);
  if (or.length > 1) return or.map((c, i) => [`"${c}" always false`, or.map((x, j) => (i === j ? FALSE(x) : x)).join(" OR "), c]);
  return [[`"${expr}" always true`, TRUE(expr), expr]];
}

// Mutants no test can tell from the original, each with the invariant that makes it so.
// They are reported as "equivalent" and left out of the score.
const EQUIVALENT = [
  ["links.rs", "contact_id = :c", "contact_id = :c",
    "every transaction that moves an address writes its email index item and the profile together, and the same transaction requires the profile's email_key to be the address released"],
  ["links.rs", "attribute_exists(code_hash) AND code_attempts < :max", "attribute_exists(code_hash)",
    "code_attempts is stored only with code_hash (codec::magic_item), and the comparison fails without it"],
  ["links.rs", "attribute_exists(pk) AND email_key = :old AND token_version = :tv AND email_change_id = :cid", "email_key = :old",
    "an email confirm also deletes the old address's index item only if it names this contact (release_email), which holds only for the profile's current address; and the address moves only with the token version, which ends the change id"],
  ["links.rs", "attribute_exists(pk) AND email_key = :old AND token_version = :tv AND email_change_id = :cid", "token_version = :tv",
    "every write that moves token_version removes the pending change id (end_all_sessions, change_password, confirm, undo), and every request writes a new one, so email_change_id = :cid already fails"],
  ["links.rs", null, "email_key = :cur",
    "the address moves only in a confirm or an undo, and both move token_version, which the same condition checks"],
  ["links.rs", "attribute_not_exists(pk) OR #st <> :banned", "attribute_not_exists(pk)",
    "`#st <> :banned` is already true on a missing item (DynamoDB Local; the stale-read scenario's join control passes under this mutant); the clause stays for readers and for any engine that reads it otherwise"],
  ["sessions.rs", null, "attribute_not_exists(revoked_at)",
    "a token's revoked_at is written only by revoke_family, together with its family's revoked_at, which the same transaction checks"],
  ["sessions.rs", null, "attribute_not_exists(ended_at)",
    "a session's ended_at is written only by revoke_family, together with its family's revoked_at, which the same rotation checks (the session record is what refuses access tokens at once; the family check also covers families revoked before sessions were recorded)"],
  ["sessions.rs", null, "#st = :active",
    "a ban writes sessions_valid_after = now with the status, and no session of a banned member signs in after it (sign-in requires an active membership)"],
];

/** Why a mutant cannot change behaviour, or null. */
export function equivalence(file, expr, clause) {
  // attribute_exists(pk) next to a comparison: a comparison with a missing attribute is
  // false, so a missing item already fails the conjunction.
  if (clause === "attribute_exists(pk)" && splitTop(expr, " AND ").some((c) => /^[#\w]+ (=|<|<=|>|>=) :\w+$/.test(c.trim())))
    return "a comparison in the same conjunction already fails on a missing item";
  for (const [f, e, c, why] of EQUIVALENT) {
    if (f !== file || c !== clause) continue;
    if (e !== null && e !== expr) continue;
    // The token's revoked_at only (the family check is one clause alone).
    if (file === "sessions.rs" && clause === "attribute_not_exists(revoked_at)" && expr === clause) continue;
    return why;
  }
  return null;
}

/** Every condition literal of a source text: { start, end, expr } (offsets of the content). */
export function conditionsOf(text) {
  const re = /\.condition_expression\(\s*(?:format!\(\s*)?"((?:[^"\\]|\\.)*)"/g;
  const out = [];
  let m;
  while ((m = re.exec(text))) {
    const end = m.index + m[0].length - 1;
    out.push({ start: end - m[1].length, end, expr: m[1] });
  }
  return out;
}

function run(cmd, args, env) {
  return spawnSync(cmd, args, { cwd: ROOT, encoding: "utf8", env, maxBuffer: 1 << 28 });
}

async function main() {
  mkdirSync(OUT, { recursive: true });
  writeFileSync(LOG, `# condition mutants, ${new Date().toISOString()}\n`);
  const files = readdirSync(DIR).filter((f) => f.endsWith(".rs") && (!only || f.includes(only)));
  const replay = ["test", "--workspace", "--test", "replay"];
  const baseEnv = { ...process.env, REPLAY_LOG: join(OUT, "condition-replay.log") };
  let group = null;
  let restore = null;
  process.on("SIGINT", () => { if (restore) restore(); if (group) group.stop(); process.exit(130); });
  // Each replay on its own fresh DynamoDB Local and SES sink: the replay's tables are
  // never deleted, and an in-memory DynamoDB Local holding thousands of them slows until
  // clock-bound fixtures fail for the wrong reason.
  const replayOnce = async () => {
    group = processGroup(join(OUT, "condition-logs"));
    const { ddbUrl, sesUrl, sesGateUrl } = await startServices(group, await freePort(), await freePort());
    const env = { ...baseEnv, REPLAY_DYNAMODB_URL: ddbUrl, REPLAY_SES_URL: sesUrl, REPLAY_SES_GATE_URL: sesGateUrl };
    const r = run("cargo", [...replay, "--", "--include-ignored", "--test-threads", "1"], env);
    await group.stop();
    group = null;
    return r;
  };
  // The unmutated tree must pass first, or every mutant would look caught.
  const base = await replayOnce();
  if (base.status !== 0) {
    console.error("the replay fails without mutants: fix that first");
    process.exit(1);
  }
  const tally = { caught: 0, missed: 0, unviable: 0, error: 0, equivalent: 0 };
  for (const f of files) {
    const path = join(DIR, f);
    const original = readFileSync(path, "utf8");
    restore = () => writeFileSync(path, original);
    for (const c of conditionsOf(original)) {
      for (const [what, expr, clause] of mutantsOf(c.expr)) {
        const why = equivalence(f, c.expr, clause);
        if (why) {
          tally.equivalent++;
          const line = `${"equivalent".padEnd(8)} ${f}: ${what} (${why})`;
          console.log(line);
          appendFileSync(LOG, `${line}\n`);
          continue;
        }
        writeFileSync(path, original.slice(0, c.start) + expr + original.slice(c.end));
        const built = run("cargo", [...replay, "--no-run"], baseEnv);
        let verdict;
        if (built.status !== 0) verdict = "unviable";
        else {
          const r = await replayOnce();
          verdict = r.status === 0 ? "missed" : "caught";
          if (verdict === "caught") {
            // Caught means a named test failed; anything else (the harness died, the
            // services stopped) is not a verdict on the mutant.
            // (The libtest summary: metric lines interleave with "test … FAILED".)
            const summary = (r.stdout || "").split("\nfailures:\n").pop() || "";
            const failed = [...summary.matchAll(/^ {4}(\S+)$/gm)].map((m) => m[1]);
            if (failed.length) verdict += ` (${failed.length} failed, first: ${failed[0]})`;
            else verdict = `error    (exit ${r.status}, no failing test: ${(r.stderr || "").trim().split("\n").slice(-2).join(" | ").slice(0, 200)})`;
          }
        }
        tally[verdict.split(" ")[0]]++;
        const line = `${verdict.padEnd(8)} ${f}: ${what}`;
        console.log(line);
        appendFileSync(LOG, `${line}\n`);
        writeFileSync(path, original);
      }
    }
    restore = null;
  }
  const viable = tally.caught + tally.missed;
  const summary = `${viable} viable condition mutants, ${tally.caught} caught, ${tally.missed} missed, ${tally.unviable} unviable, ${tally.error} errors, ${tally.equivalent} equivalent (not run): ${viable ? ((100 * tally.caught) / viable).toFixed(1) : 0} %`;
  console.log(summary);
  appendFileSync(LOG, `${summary}\n`);
  // Leave the tree built as it is.
  run("cargo", [...replay, "--no-run"], baseEnv);
}

if (process.argv[1] && process.argv[1].endsWith("condition-mutants.mjs")) await main();
