// Same-device binding (RFC 7636 S256): the verifier stays in this browser, the challenge
// goes with register/magic, and consume sends the verifier.

const b64url = (bytes: Uint8Array): string =>
  btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

/** 32 random bytes, base64url: 43 characters of [A-Za-z0-9-_]. */
export function createVerifier(): string {
  return b64url(crypto.getRandomValues(new Uint8Array(32)));
}

/** base64url(SHA-256(verifier)). */
export async function challengeOf(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return b64url(new Uint8Array(digest));
}
