// The signing secret as it is in AWS — read from Secrets Manager (`SIGNING_KEY_SECRET_ARN`),
// here moto's server (PyPI, pinned in tools/requirements.txt) on a free port — and key
// rotation end to end with `contact-auth-admin rotate-key`. A second API (cargo lambda
// watch, one instance per function, the same table) reads the secret; the make-dev stack
// keeps its key file.
//
// What it shows: the secret the stack template generates has no RSA key, so sign-ins
// fail (500, and the log says to run rotate-key) until the first rotation; after it, new
// tokens carry the new kid (within SIGNING_KEY_REFRESH_SECONDS, 2 s here), the JWK set
// lists current, next and previous, a token signed before still verifies; a rotation
// within two hours is refused unless forced; after a second rotation the oldest key is
// gone, and after a third the first RS256 token no longer verifies; --revoke (a leaked
// key) leaves nothing signed before verifying.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { createRemoteJWKSet, jwtVerify, decodeProtectedHeader } from "jose";
import { ROOT, BIN, freePort, waitFor, sleep, processGroup, functionEnv } from "../../tools/stack.mjs";
import {
  DDB_URL, SES_URL, TABLE, LOG_DIR, PREFIX, JSONAPI, uniqueEmail, signUp, setPassword, recordSecret,
} from "./helpers.mjs";

const REFRESH_SECONDS = 2;
const PASSWORD = "rotation-kettle-harbour-42";
let group, api, env, secretArn, email;

function python(code, args = []) {
  const r = spawnSync(join(ROOT, ".venv", "bin", "python"), ["-c", code, ...args], { env: { ...process.env, ...env }, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`python: ${r.stderr}`);
  return r.stdout.trim();
}

/** Every secret string and private key now in the secret, for the secrets-in-logs check. */
function recordKeyMaterial() {
  const doc = JSON.parse(python(
    "import boto3,os,sys; c=boto3.client('secretsmanager', region_name=os.environ['AWS_REGION'], endpoint_url=os.environ['AWS_ENDPOINT_URL_SECRETS_MANAGER']); print(c.get_secret_value(SecretId=sys.argv[1])['SecretString'])",
    [secretArn],
  ));
  const material = [];
  for (const [k, v] of Object.entries(doc)) {
    if (typeof v !== "string") continue;
    if (k.endsWith("_secret")) material.push(v);
    // A private key: each of its base64 lines.
    if (k.endsWith("_key")) material.push(...v.split("\n").filter((l) => l.length >= 40 && !l.startsWith("-----")));
  }
  material.forEach(recordSecret);
  return material;
}

/** rotate-key printed no secret (its output goes to terminals and CI logs). */
function assertPrintsNoSecret(run) {
  const material = recordKeyMaterial();
  assert.ok(material.length >= 5, "the secret holds keys");
  for (const m of material) assert.ok(!run.stdout.includes(m) && !run.stderr.includes(m), "rotate-key printed key material");
}

function rotate(...flags) {
  return spawnSync(join(BIN, "contact-auth-admin"), ["rotate-key", "--secret-id", secretArn, ...flags], {
    cwd: ROOT, env: { ...process.env, ...env }, encoding: "utf8",
  });
}

/** The kids rotate-key printed: current, next, previous. */
function kidsOf(out) {
  const kid = (role) => new RegExp(`^\\s+${role}\\S*\\s.*?\\s+(RS256|ES256|EdDSA)\\s+(\\S+)$`, "m").exec(out);
  return { current: kid("current")?.[2], next: kid("next")?.[2], previous: kid("previous")?.[2], currentAlg: kid("current")?.[1] };
}

async function login() {
  return fetch(`${api}${PREFIX}/login`, {
    method: "POST",
    headers: { "content-type": JSONAPI },
    body: JSON.stringify({ data: { type: "login_requests", attributes: { email, password: PASSWORD, slug: "member-academy" } } }),
  });
}

async function jwks() {
  return (await (await fetch(`${api}${PREFIX}/.well-known/jwks.json`)).json()).keys.map((k) => k.kid);
}

const meStatus = async (token) => (await fetch(`${api}${PREFIX}/me`, { headers: { Authorization: `Bearer ${token}` } })).status;

// Each function rereads the secret at its first request SIGNING_KEY_REFRESH_SECONDS after
// its last read: a rotation reaches every one within that bound (plus a request), not at
// once. These wait for it, within a few times the bound.
const BOUND_MS = (REFRESH_SECONDS * 5 + 10) * 1000;

async function jwksBecomes(kids) {
  await waitFor(`the JWK set ${kids.join(", ")}`, async () => JSON.stringify(await jwks()) === JSON.stringify(kids), BOUND_MS);
}

async function meBecomes(token, status) {
  await waitFor(`/me answering ${status}`, async () => (await meStatus(token)) === status, BOUND_MS);
}

/** Logs in until the token's kid is `kid` (the functions reread the secret). */
async function tokenWithKid(kid) {
  let last;
  await waitFor(`a token signed by ${kid}`, async () => {
    const r = await login();
    if (r.status !== 200) return false;
    last = (await r.json()).access_token;
    recordSecret(last);
    return decodeProtectedHeader(last).kid === kid;
  }, BOUND_MS);
  return last;
}

before(async () => {
  group = processGroup(LOG_DIR);
  const motoPort = await freePort();
  const motoUrl = `http://127.0.0.1:${motoPort}`;
  group.start("moto", join(ROOT, ".venv", "bin", "moto_server"), ["-H", "127.0.0.1", "-p", String(motoPort)], {});
  await waitFor("moto", async () => (await fetch(`${motoUrl}/moto-api/`).catch(() => ({ ok: false }))).ok, 60000);
  const apiPort = await freePort();
  api = `http://127.0.0.1:${apiPort}`;
  env = {
    ...functionEnv({ ddbUrl: DDB_URL, sesUrl: SES_URL, table: TABLE, publicBaseUrl: api }),
    SIGNING_KEY_FILE: "",
    AWS_ENDPOINT_URL_SECRETS_MANAGER: motoUrl,
    SIGNING_KEY_REFRESH_SECONDS: String(REFRESH_SECONDS),
    // As the make-test stack: every request comes from 127.0.0.1.
    RATE_IP_PER_MINUTE: "100000",
    RATE_IP_LOGIN_PER_MINUTE: "100000",
    RATE_IP_NEW_ADDRESS_MAIL_PER_MINUTE: "100000",
    RATE_IP_SIGN_IN_MAIL_PER_MINUTE: "100000",
    LOG_LEVEL: "debug",
  };
  // What the stack template's GenerateSecretString makes: {"signing_secret": <64 chars>}.
  const initial = randomBytes(32).toString("hex");
  recordSecret(initial);
  secretArn = python(
    "import boto3,json,sys; import os; c=boto3.client('secretsmanager', region_name=os.environ['AWS_REGION'], endpoint_url=os.environ['AWS_ENDPOINT_URL_SECRETS_MANAGER']); print(c.create_secret(Name='contact-auth-signing-'+sys.argv[2], SecretString=json.dumps({'signing_secret': sys.argv[1]}))['ARN'])",
    [initial, randomBytes(4).toString("hex")],
  );
  env.SIGNING_KEY_SECRET_ARN = secretArn;
  group.start("rotation-api", join(ROOT, ".venv", "bin", "cargo-lambda"), [
    "lambda", "watch", "--invoke-address", "127.0.0.1", "--invoke-port", String(apiPort),
    "--disable-cors", "--ignore-changes", "--concurrency", "1",
  ], env);
  await waitFor("the second API", async () => (await fetch(`${api}/m`).catch(() => ({ status: 0 }))).status === 200, 300000);
  // A member with a password, made through the make-dev stack (same table).
  email = uniqueEmail("rotation");
  const pair = await signUp(email);
  assert.equal((await setPassword(pair.access_token, PASSWORD)).status, 200);
  recordSecret(PASSWORD);
});

after(async () => {
  await group?.stop();
});

test("Secrets Manager: the generated secret publishes its key but cannot sign RS256 until rotate-key; rotations are picked up, keep old tokens valid until the key leaves, and drop the oldest", async () => {
  // 1. The stack's secret as generated: published (one EdDSA key), no RS256 sign-in.
  const generatedKids = await jwks();
  assert.equal(generatedKids.length, 1);
  const refused = await login();
  assert.equal(refused.status, 500);
  assert.equal((await refused.json()).errors[0].code, "internal_error");

  // 2. The first rotation: current and next RS256, the generated key kept as previous.
  const first = rotate();
  assert.equal(first.status, 0, first.stderr);
  assert.doesNotMatch(first.stdout, /PRIVATE KEY|signing_secret/);
  assertPrintsNoSecret(first);
  const k1 = kidsOf(first.stdout);
  assert.equal(k1.currentAlg, "RS256");
  assert.equal(k1.previous, generatedKids[0]);
  assert.match(first.stdout, /not published before it signs/);
  const t1 = await tokenWithKid(k1.current);
  await jwksBecomes([k1.current, k1.next, k1.previous]);
  // A verifier that follows the discovery document accepts it (RS256 only).
  const config = await (await fetch(`${api}${PREFIX}/.well-known/openid-configuration`)).json();
  await jwtVerify(t1, createRemoteJWKSet(new URL(config.jwks_uri)), { algorithms: ["RS256"], issuer: config.issuer, audience: "team:team_abc123" });

  // 3. Too soon: refused, nothing written.
  const early = rotate();
  assert.notEqual(early.status, 0);
  assert.match(early.stderr, /--force/);
  await sleep(REFRESH_SECONDS * 1000 + 500);
  assert.deepEqual(await jwks(), [k1.current, k1.next, k1.previous]);

  // 4. The second rotation (forced): the published next key signs now, no warning.
  const second = rotate("--force");
  assert.equal(second.status, 0, second.stderr);
  assert.doesNotMatch(second.stdout, /not published before/);
  assertPrintsNoSecret(second);
  const k2 = kidsOf(second.stdout);
  assert.equal(k2.current, k1.next, "the next key was promoted");
  assert.equal(k2.previous, k1.current);
  const t2 = await tokenWithKid(k2.current);
  await jwksBecomes([k2.current, k2.next, k2.previous]);
  assert.ok(!(await jwks()).includes(generatedKids[0]), "the oldest key is gone");
  assert.equal(await meStatus(t1), 200, "a token signed before still verifies");
  assert.equal(await meStatus(t2), 200);

  // 5. A third rotation drops the first RS256 key: its token stops verifying.
  const third = rotate("--force");
  assert.equal(third.status, 0, third.stderr);
  assertPrintsNoSecret(third);
  const k3 = kidsOf(third.stdout);
  await tokenWithKid(k3.current);
  await jwksBecomes([k3.current, k3.next, k3.previous]);
  assert.ok(!(await jwks()).includes(k1.current));
  await meBecomes(t1, 401);
  assert.equal(await meStatus(t2), 200);

  // 6. A leaked key: --revoke replaces current and next and publishes no previous key,
  // so nothing signed before verifies once the functions reread the secret.
  const t3 = await tokenWithKid(k3.current);
  const revoke = rotate("--revoke");
  assert.equal(revoke.status, 0, revoke.stderr);
  assertPrintsNoSecret(revoke);
  const k4 = kidsOf(revoke.stdout);
  assert.equal(k4.previous, undefined, "no previous key");
  assert.ok(![k3.current, k3.next, k3.previous].includes(k4.current));
  await jwksBecomes([k4.current, k4.next]);
  await meBecomes(t3, 401);
  await meBecomes(t2, 401);
  const t4 = await tokenWithKid(k4.current);
  assert.equal(await meStatus(t4), 200);
});
