// The README's walkthrough, run as written (bash) against the local API, so the docs a
// newcomer copies stay true. Only the one-minute wait before step 6 is shortened to the
// test stack's cooldown, and member@example.com becomes a fresh address (the docs-examples
// test already made that member and set its password in this stack).

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { API_URL, SES_URL, recordSecret, uniqueEmail } from "./helpers.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

test("the README walkthrough works by copy-paste", async () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const section = readme.split("## Walkthrough")[1];
  const script = section.split("```sh")[1].split("```")[0];
  assert.match(script, /magic\/consume/);
  const email = uniqueEmail("readme");
  const body = script
    .replaceAll("member@example.com", email)
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
  assert.equal((out.match(/"errors"/g) || []).length, 1, `only the final /me is refused: ${out}`);
  const pair = JSON.parse(/\{"access_token".*?\}(?=\{)/s.exec(out)[0]);
  recordSecret(pair.access_token);
  recordSecret(pair.refresh_token);
  assert.match(out, /"type":"contacts"/);
  assert.ok(out.includes(`"email":"${email}"`), "step 4 shows the member");
  assert.match(out, /"keys":\[\{"alg":"RS256"/);
  recordSecret("violet-kettle-harbour-42");
  recordSecret("amber-lantern-orchard-17");
  const amrs = [...out.matchAll(/"access_token":"([^"]+)"/g)].map((m) => JSON.parse(Buffer.from(m[1].split(".")[1], "base64url")).amr);
  assert.deepEqual(amrs[0], ["magic_link"], "step 3 signed in by link");
  assert.ok(amrs.some((a) => a.length === 1 && a[0] === "otp"), `step 6b signed in by code: ${JSON.stringify(amrs)}`);
  assert.match(out, /"has_password":true/, "step 7 set the password");
  assert.match(out, /"meta":\{"access_token"/, "step 9 returned the pair in meta");
  assert.match(out, /HTTP\/1\.1 204 No Content/, "step 10 logged out everywhere");
  assert.ok(out.trimEnd().endsWith('"status":"401","title":"Unauthorized"}]}'), "the last /me is refused");
  for (const m of out.matchAll(/"(?:access|refresh)_token":"([^"]+)"/g)) recordSecret(m[1]);
});
