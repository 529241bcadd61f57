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

/** The mutants of one condition literal: [description, new literal]. */
export function mutantsOf(expr) {
  const and = splitTop(expr, " AND ");
  const or = splitTop(expr, " OR ");
  if (and.length > 1 && or.length > 1) return []; // mixed at the top level: none here
  if (and.length > 1) return and.map((c, i) => [`"${c}" always true`, and.map((x, j) => (i === j ? TRUE(x) : x)).join(" AND ")]);
  if (or.length > 1) return or.map((c, i) => [`"${c}" always false`, or.map((x, j) => (i === j ? FALSE(x) : x)).join(" OR ")]);
  return [[`"${expr}" always true`, TRUE(expr)]];
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
  const group = processGroup(join(OUT, "condition-logs"));
  const { ddbUrl, sesUrl } = await startServices(group, await freePort(), await freePort());
  const env = { ...process.env, REPLAY_DYNAMODB_URL: ddbUrl, REPLAY_SES_URL: sesUrl, REPLAY_LOG: join(OUT, "condition-replay.log") };
  const replay = ["test", "--workspace", "--test", "replay"];
  let restore = null;
  process.on("SIGINT", () => { if (restore) restore(); group.stop(); process.exit(130); });
  // The unmutated tree must pass first, or every mutant would look caught.
  const base = run("cargo", [...replay, "--", "--include-ignored", "--test-threads", "1"], env);
  if (base.status !== 0) {
    console.error("the replay fails without mutants: fix that first");
    await group.stop();
    process.exit(1);
  }
  const tally = { caught: 0, missed: 0, unviable: 0 };
  for (const f of files) {
    const path = join(DIR, f);
    const original = readFileSync(path, "utf8");
    restore = () => writeFileSync(path, original);
    for (const c of conditionsOf(original)) {
      for (const [what, expr] of mutantsOf(c.expr)) {
        writeFileSync(path, original.slice(0, c.start) + expr + original.slice(c.end));
        const built = run("cargo", [...replay, "--no-run"], env);
        let verdict;
        if (built.status !== 0) verdict = "unviable";
        else {
          const r = run("cargo", [...replay, "--", "--include-ignored", "--test-threads", "1"], env);
          verdict = r.status === 0 ? "missed" : "caught";
          if (verdict === "caught") {
            const first = /^test (\S+) .*FAILED$/m.exec(r.stdout || "");
            if (first) verdict += ` (first: ${first[1]})`;
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
  const summary = `${viable} viable condition mutants, ${tally.caught} caught, ${tally.missed} missed, ${tally.unviable} unviable: ${viable ? ((100 * tally.caught) / viable).toFixed(1) : 0} %`;
  console.log(summary);
  appendFileSync(LOG, `${summary}\n`);
  // Leave the tree built as it is.
  run("cargo", [...replay, "--no-run"], env);
  await group.stop();
}

if (process.argv[1] && process.argv[1].endsWith("condition-mutants.mjs")) await main();
