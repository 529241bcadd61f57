// Access tokens checked the way a hub's own verifier checks them — an API Gateway JWT
// authorizer, or any service with a standard JOSE library (here `jose`, pinned in
// package-lock.json): read `<iss>/.well-known/openid-configuration`, follow `jwks_uri`,
// verify with RS256 only, the issuer and the team's own audience (CONTRACT §12).
//
// Breaking it: tokens signed EdDSA (the old default), a discovery document whose issuer is
// not the tokens' `iss` or whose `jwks_uri` is relative, or an `aud` without
// `team:<team_id>` each fail the first test.

import { test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { createRemoteJWKSet, jwtVerify, SignJWT, decodeProtectedHeader, decodeJwt } from "jose";
import { API_URL, PREFIX, signUp, uniqueEmail, me } from "./helpers.mjs";

const ISSUER = `${API_URL}${PREFIX}`;

async function discover() {
  const r = await fetch(`${ISSUER}/.well-known/openid-configuration`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-type"), "application/json");
  assert.equal(r.headers.get("cache-control"), "public, max-age=300");
  return r.json();
}

test("discovery → jwks_uri → a real token verifies with jose restricted to RS256, the issuer and the team audience", async () => {
  const pair = await signUp(uniqueEmail("jose"));
  const claims = decodeJwt(pair.access_token);
  const config = await discover();
  assert.equal(config.issuer, claims.iss, "issuer is exactly the tokens' iss");
  assert.equal(config.issuer, ISSUER);
  assert.equal(config.jwks_uri, `${ISSUER}/.well-known/jwks.json`, "absolute jwks_uri");
  assert.deepEqual(config.id_token_signing_alg_values_supported, ["RS256"]);

  const keys = createRemoteJWKSet(new URL(config.jwks_uri));
  const team = `team:${claims.tid}`;
  const { payload, protectedHeader } = await jwtVerify(pair.access_token, keys, {
    algorithms: ["RS256"], issuer: config.issuer, audience: team, typ: "at+jwt",
  });
  assert.equal(protectedHeader.alg, "RS256");
  assert.equal(payload.sub, claims.sub);
  assert.deepEqual(payload.aud, ["contact-api", team]);
  // The deployment's own audience works too (services that serve every team).
  await jwtVerify(pair.access_token, keys, { algorithms: ["RS256"], issuer: config.issuer, audience: "contact-api" });

  // Another team's authorizer refuses it.
  await assert.rejects(
    jwtVerify(pair.access_token, keys, { algorithms: ["RS256"], issuer: config.issuer, audience: "team:team_other" }),
    (e) => e.code === "ERR_JWT_CLAIM_VALIDATION_FAILED" && e.claim === "aud",
  );
  // A verifier that allows only ES256 (a REST API set up for it) refuses it.
  await assert.rejects(
    jwtVerify(pair.access_token, keys, { algorithms: ["ES256"], issuer: config.issuer, audience: team }),
    (e) => e.code === "ERR_JOSE_ALG_NOT_ALLOWED",
  );
  // Another issuer's verifier refuses it.
  await assert.rejects(
    jwtVerify(pair.access_token, keys, { algorithms: ["RS256"], issuer: "https://other.example/api/v1/contact-auth", audience: team }),
    (e) => e.code === "ERR_JWT_CLAIM_VALIDATION_FAILED" && e.claim === "iss",
  );
});

test("a token an attacker signs with their own RSA key — the published kid, or their own — verifies neither with jose nor at /me", async () => {
  const pair = await signUp(uniqueEmail("forged-rs256"));
  const claims = decodeJwt(pair.access_token);
  const realKid = decodeProtectedHeader(pair.access_token).kid;
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const config = await discover();
  const keys = createRemoteJWKSet(new URL(config.jwks_uri));
  for (const kid of [realKid, "attacker-key"]) {
    const forged = await new SignJWT({ ...claims })
      .setProtectedHeader({ alg: "RS256", kid, typ: "at+jwt" })
      .sign(privateKey);
    await assert.rejects(
      jwtVerify(forged, keys, { algorithms: ["RS256"], issuer: config.issuer, audience: `team:${claims.tid}` }),
      (e) => ["ERR_JWS_SIGNATURE_VERIFICATION_FAILED", "ERR_JWKS_NO_MATCHING_KEY"].includes(e.code),
    );
    const r = await me(forged);
    assert.equal(r.status, 401, kid);
  }
  // The real token still works at /me.
  assert.equal((await me(pair.access_token)).status, 200);
});

test("the discovery route answers CORS preflights like every route", async () => {
  const pre = await fetch(`${ISSUER}/.well-known/openid-configuration`, {
    method: "OPTIONS",
    headers: { Origin: "http://localhost:5173", "Access-Control-Request-Method": "GET" },
  });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get("access-control-allow-origin"), "http://localhost:5173");
  assert.match(pre.headers.get("access-control-allow-methods") || "", /GET/);
});
