// The curl examples of the platform's public docs page (docs/seed-member-authentication.txt,
// a copy of ../shared/seed-member-authentication.txt) run verbatim against the local API
// with MIO_BASE_URL set; only `-sS -o <file> -w '%{http_code}'` is appended to read the result.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { API_URL, mails, waitForMail, tokenFrom, recordSecret, mailerIdle } from "./helpers.mjs";

const DOC = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "docs", "seed-member-authentication.txt");

/** Every curl command in the page, joined across its continuation lines. */
export function curlExamples(text) {
  const out = [];
  let cur = null;
  for (const line of text.split("\n")) {
    if (cur === null && line.startsWith("curl ")) cur = [];
    if (cur === null) continue;
    cur.push(line);
    const joined = cur.join("\n");
    const quotes = (joined.match(/'/g) || []).length;
    if (!line.trimEnd().endsWith("\\") && quotes % 2 === 0) {
      out.push(joined);
      cur = null;
    }
  }
  return out;
}

function run(cmd) {
  const dir = mkdtempSync(join(tmpdir(), "curl-"));
  const bodyFile = join(dir, "body");
  const r = spawnSync("bash", ["-c", `${cmd} -sS -o ${bodyFile} -w '%{http_code}'`], {
    env: { ...process.env, MIO_BASE_URL: API_URL },
    encoding: "utf8",
  });
  assert.equal(r.status, 0, `curl failed: ${r.stderr}`);
  return { status: Number(r.stdout), body: readFileSync(bodyFile, "utf8") };
}

const cooldown = () => new Promise((r) => setTimeout(r, 2100));

test("the docs page's curl examples work verbatim", async () => {
  const examples = curlExamples(readFileSync(DOC, "utf8"));
  assert.equal(examples.length, 5, "register (slug), register (team_id), magic, consume, login");
  const [regSlug, regTeam, magicLink, consumeEx] = examples;
  assert.match(regSlug, /contact-auth\/register/);
  assert.match(consumeEx, /magic\/consume/);
  recordSecret("member@example.com");

  const before = (await mails("member@example.com")).length;
  assert.equal(run(regSlug).status, 202);
  const first = await waitForMail("member@example.com", before);
  await cooldown();
  assert.equal(run(regTeam).status, 202);
  await cooldown();
  assert.equal(run(magicLink).status, 202);
  await mailerIdle();

  // The consume example with its placeholder token is a clear 401…
  const placeholder = run(consumeEx);
  assert.equal(placeholder.status, 401);
  assert.equal(JSON.parse(placeholder.body).errors[0].code, "magic_link_invalid");
  // …and the same command with the newest emailed token signs the member in. The register
  // example's link was superseded by the later ones (newest link wins).
  const newest = await waitForMail("member@example.com", before + 1);
  const token = tokenFrom(newest);
  assert.notEqual(tokenFrom(first), token);
  const ok = run(consumeEx.replace("magic-token-from-email", token));
  assert.equal(ok.status, 200, ok.body);
  recordSecret(JSON.parse(ok.body).access_token);
  recordSecret(JSON.parse(ok.body).refresh_token);

  // The login example (its password is a placeholder) is the uniform 401; with the member's
  // real password the same command signs in.
  const loginEx = examples[4];
  assert.match(loginEx, /contact-auth\/login/);
  const refused = run(loginEx);
  assert.equal(refused.status, 401);
  assert.equal(JSON.parse(refused.body).errors[0].code, "invalid_credentials");
  const access = JSON.parse(ok.body).access_token;
  const set = run(`curl -X POST "$MIO_BASE_URL/api/v1/contact-auth/me/password" -H "Authorization: Bearer ${access}" -H "Content-Type: application/vnd.api+json" -d '{"data":{"type":"password_sets","attributes":{"password":"docs-example-pass-93"}}}'`);
  assert.equal(set.status, 200, set.body);
  recordSecret("docs-example-pass-93");
  const signedIn = run(loginEx.replace('"password": "password"', '"password": "docs-example-pass-93"'));
  assert.equal(signedIn.status, 200, signedIn.body);
  recordSecret(JSON.parse(signedIn.body).access_token);
  recordSecret(JSON.parse(signedIn.body).refresh_token);
});
