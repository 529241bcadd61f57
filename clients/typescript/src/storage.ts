/**
 * Where the client keeps its session (the access token, and in `refresh: "body"` mode the
 * refresh token) and a pending PKCE verifier. Synchronous, so reads never race a refresh.
 */
export interface StorageAdapter {
  get(key: string): string | null;
  set(key: string, value: string): void;
  remove(key: string): void;
}

/** Lost on reload: the safest choice. In cookie modes a reload restores through the cookie. */
export function memoryStorage(): StorageAdapter {
  const m = new Map<string, string>();
  return {
    get: (k) => m.get(k) ?? null,
    set: (k, v) => void m.set(k, v),
    remove: (k) => void m.delete(k),
  };
}

/**
 * `window.localStorage` under a prefix: survives reloads and is shared by the origin's tabs
 * (a link opened in a new tab finds its PKCE verifier). Any script on the origin can read
 * it: with `refresh: "body"` that includes the refresh token (README, "Refresh modes").
 */
export function localStorageAdapter(prefix = "contact-auth:", store: Storage = globalThis.localStorage): StorageAdapter {
  return {
    get: (k) => store.getItem(prefix + k),
    set: (k, v) => store.setItem(prefix + k, v),
    remove: (k) => store.removeItem(prefix + k),
  };
}
