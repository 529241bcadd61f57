// OpenAPI-driven fuzzing (issue 8, adversarial suite): tools/fuzz.py runs Schemathesis
// against this stack with openapi.yaml — every answer documented (status, media type,
// headers, body schema), no 5xx, schema-valid requests accepted and schema-violating ones
// refused. The Hypothesis seed is fixed, so a failure reproduces with the same command.
//
// Three runs, because some operations end the session whose token the fuzzer holds:
//   1. every operation but changePassword and logoutEverywhere, as a member signed in by
//      magic link (recent authentication: PATCH /me email and POST /me/password succeed);
//   2. changePassword, as a member signed in by password (so a request without
//      current_password is 403 and no generated password is the current one: the session
//      survives every case);
//   3. logoutEverywhere, with the first member's token (which it ends).

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { call, doc, signUp, uniqueEmail, recordSecret } from "./helpers.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const RUN_TIMEOUT_MS = 5 * 60 * 1000;

/** Runs tools/fuzz.py with `token` and `args`; prints its summary line; asserts exit 0. */
function fuzz(label, token, args) {
  const r = spawnSync(join(ROOT, ".venv", "bin", "python"), [join(ROOT, "tools", "fuzz.py"), ...args], {
    cwd: ROOT,
    env: { ...process.env, E2E_ACCESS_TOKEN: token },
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
    timeout: RUN_TIMEOUT_MS,
  });
  const out = `${r.stdout || ""}\n${r.stderr || ""}`;
  const summary = out.split("\n").filter((l) => l.startsWith("fuzz: ")).pop() || "fuzz: no summary";
  console.log(`${label}: ${summary}`);
  if (r.error || r.status !== 0) console.log(out);
  assert.equal(r.error, undefined, `${label}: ${r.error}`);
  assert.equal(r.status, 0, `${label}: the fuzzer found failures (output above)`);
}

test("Schemathesis finds no failure in any operation of openapi.yaml", { timeout: 3 * RUN_TIMEOUT_MS + 60000 }, async () => {
  const first = await signUp(uniqueEmail("fuzz"));
  fuzz("all but changePassword and logoutEverywhere", first.access_token, [
    "--exclude-operation-id", "changePassword",
    "--exclude-operation-id", "logoutEverywhere",
  ]);

  const email = uniqueEmail("fuzz-pw");
  const password = `fuzz-${randomBytes(9).toString("base64url")}`;
  recordSecret(password);
  const signedUp = await signUp(email);
  const set = await call("POST", "/me/password", {
    headers: { Authorization: `Bearer ${signedUp.access_token}` },
    body: doc("password_sets", { password }),
  });
  assert.equal(set.status, 200, set.text);
  const login = await call("POST", "/login", { body: doc("login_requests", { email, password, slug: "member-academy" }) });
  assert.equal(login.status, 200, login.text);
  recordSecret(login.json.access_token);
  recordSecret(login.json.refresh_token);
  fuzz("changePassword", login.json.access_token, ["--include-operation-id", "changePassword"]);

  // The first member's session is still alive (nothing in run 1 ends it); this run ends it.
  const me = await call("GET", "/me", { headers: { Authorization: `Bearer ${first.access_token}` } });
  assert.equal(me.status, 200, me.text);
  fuzz("logoutEverywhere", first.access_token, ["--include-operation-id", "logoutEverywhere"]);
});
