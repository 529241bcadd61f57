#!/usr/bin/env node
// `make sam-local`: SAM's own emulator (`sam local start-api`, Docker) serving the built
// functions on http://127.0.0.1:3001, against the `make dev` stack on this host: its
// DynamoDB Local (:8000, the table contact-auth-dev) and, for the signing key, moto's
// Secrets Manager started here on :5005 with the key document of `make dev`
// (.dev/signing-key.json) as the secret `contact-auth-local-signing`. The containers reach
// the host as host.docker.internal (sam-local.env.json). Mail: `make dev`'s own mailer
// follows the table, so the inbox on :8005 shows the mails.
//
// NOT RUN HERE: this machine has no container engine. What is checked without Docker:
// every variable in sam-local.env.json is declared in template.yaml (SAM passes only
// declared ones; testkit/tests/tables.rs), and the secret path itself runs against moto in
// tests/e2e/rotation.test.mjs.

import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, waitFor } from "./stack.mjs";

const MOTO_PORT = 5005;
const SECRET = JSON.parse(readFileSync(join(ROOT, "sam-local.env.json"), "utf8")).Parameters.SIGNING_KEY_SECRET_ARN;
const fail = (msg) => { console.error(`sam-local: ${msg}`); process.exit(2); };

if (spawnSync("docker", ["info"], { stdio: "ignore" }).status !== 0) fail("needs a running Docker engine (sam local runs each function in a container)");
if (!(await fetch("http://127.0.0.1:8000").then(() => true, () => false))) fail("start `make dev` first (DynamoDB Local on :8000, the table and the mailer)");
let keyDoc;
try { keyDoc = readFileSync(join(ROOT, ".dev", "signing-key.json"), "utf8"); } catch { fail("no .dev/signing-key.json: start `make dev` first"); }

const env = { ...process.env, AWS_ACCESS_KEY_ID: "local", AWS_SECRET_ACCESS_KEY: "local", AWS_REGION: "us-east-1", AWS_DEFAULT_REGION: "us-east-1", SAM_CLI_TELEMETRY: "0" };
// All interfaces: the containers come in through the Docker bridge. It serves only the
// local development key.
const moto = spawn(join(ROOT, ".venv", "bin", "moto_server"), ["-H", "0.0.0.0", "-p", String(MOTO_PORT)], { stdio: "ignore" });
const stop = () => { moto.kill(); };
process.on("exit", stop);
process.on("SIGINT", () => process.exit(130));
await waitFor("moto", async () => (await fetch(`http://127.0.0.1:${MOTO_PORT}/moto-api/`)).ok, 60000);
const put = spawnSync(join(ROOT, ".venv", "bin", "python"), ["-c", `
import boto3, sys
c = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url="http://127.0.0.1:${MOTO_PORT}")
try:
    c.create_secret(Name=sys.argv[1], SecretString=sys.stdin.read())
except c.exceptions.ResourceExistsException:
    pass
`, SECRET], { input: keyDoc, env, encoding: "utf8" });
if (put.status !== 0) fail(`cannot create the local secret: ${put.stderr}`);

console.log("sam-local: http://127.0.0.1:3001/api/v1/contact-auth (Ctrl-C stops it)");
const sam = spawn(join(ROOT, ".venv", "bin", "sam"), [
  "local", "start-api", "--port", "3001", "--env-vars", join(ROOT, "sam-local.env.json"),
  "--add-host", `host.docker.internal:${process.env.SAM_LOCAL_HOST_GATEWAY || "host-gateway"}`,
], { cwd: ROOT, env, stdio: "inherit" });
sam.on("exit", (code) => process.exit(code ?? 1));
