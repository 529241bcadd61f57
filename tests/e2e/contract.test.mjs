// The contract files agree with each other and with the code: openapi.yaml is valid
// OpenAPI 3.1 and its examples match its schemas; template.yaml, CargoLambda.toml and
// openapi.yaml list the same routes; the error codes match shared/src/errors.rs.
// The checks live in tools/check_contract.py (Python: the OpenAPI validator and YAML);
// the route and error-code tables are compared by testkit/tests/tables.rs (cargo test).

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

test("openapi.yaml is valid OpenAPI and its examples match their schemas (routes and codes: testkit/tests/tables.rs)", () => {
  const r = spawnSync(join(ROOT, ".venv", "bin", "python"), [join(ROOT, "tools", "check_contract.py")], { encoding: "utf8" });
  console.log(r.stdout.split("\n").map((l) => `# ${l}`).join("\n"));
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /^[1-9]\d* passed, 0 failed$/m);
});
