// The README's walkthrough, run as written (bash) against the local API, so the docs a
// newcomer copies stay true. Only the one-minute wait before step 6 is shortened to the
// test stack's cooldown.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { API_URL, SES_URL, recordSecret } from "./helpers.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

test("the README walkthrough works by copy-paste", async () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const section = readme.split("## Walkthrough")[1];
  const script = section.split("```sh")[1].split("```")[0];
  assert.match(script, /magic\/consume/);
  recordSecret("member@example.com");
  await new Promise((r) => setTimeout(r, 2100)); // earlier tests may have mailed this address
  const body = script
    .replace("export MIO_BASE_URL=http://127.0.0.1:3000", `export MIO_BASE_URL=${API_URL}`)
    .replace("# 6.", "sleep 2.1 # 6.");
  const r = spawnSync("bash", ["-euo", "pipefail", "-c", body], {
    cwd: ROOT,
    env: { ...process.env, SES_URL },
    encoding: "utf8",
  });
  assert.equal(r.status, 0, `walkthrough failed: ${r.stderr}`);
  const out = r.stdout;
  assert.equal((out.match(/HTTP\/1\.1 202 Accepted/g) || []).length, 2, out);
  const pair = JSON.parse(/\{"access_token".*?\}(?=\{)/s.exec(out)[0]);
  recordSecret(pair.access_token);
  recordSecret(pair.refresh_token);
  assert.match(out, /"type":"contacts"/);
  assert.match(out, /"email":"member@example.com"/);
  assert.match(out, /"keys":\[\{"alg":"EdDSA"/);
});
