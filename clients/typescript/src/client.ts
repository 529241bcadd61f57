import createClient, { type Client } from "openapi-fetch";
import type { components, paths } from "./schema.js";
import { ContactAuthError, networkError, toError } from "./errors.js";
import { challengeOf, createVerifier } from "./pkce.js";
import { memoryStorage, type StorageAdapter } from "./storage.js";

type Schemas = components["schemas"];
export type TokenPair = Schemas["TokenPair"];
export type Contact = Schemas["ContactResource"];
export type SessionResource = Schemas["SessionResource"];
export type ContactPatch = Schemas["ContactPatchAttributes"];
export type Api = Client<paths>;

/**
 * How the refresh token travels (README "Refresh modes"):
 * - `"cookie"` (A): the `HttpOnly; SameSite=Strict` cookie. For an API on the frontend's own
 *   site (same origin, or a subdomain of the same registrable domain).
 * - `"body"` (B): the client keeps the refresh token from the response body in `storage` and
 *   sends it in the body; rotation and reuse detection still apply. Works from any site.
 * - `"partitioned"` (C): a `SameSite=None; Secure; HttpOnly; Partitioned` cookie of its own
 *   name, for a frontend on another site, when the deployment opted in.
 */
export type RefreshMode = "cookie" | "body" | "partitioned";

export type AuthChangeEvent = "INITIAL_SESSION" | "SIGNED_IN" | "TOKEN_REFRESHED" | "SIGNED_OUT";

/** The claims of an access token, decoded for display (the server verifies them). */
export interface AccessClaims {
  sub: string;
  tid: string;
  hid?: string;
  sid?: string;
  amr: string[];
  auth_time: number;
  exp: number;
  iat: number;
  [claim: string]: unknown;
}

export interface Session {
  accessToken: string;
  /** Milliseconds since the epoch, on this client's clock (received + `expires_in`). */
  expiresAt: number;
  /** Seconds the access token was issued for. */
  lifetime: number;
  claims: AccessClaims;
  /** Only in `refresh: "body"` mode. */
  refreshToken?: string;
}

export interface ContactAuthOptions {
  /** Where `/api/v1/contact-auth` lives: `https://auth.example.com`, or `""` for this origin. */
  baseUrl: string;
  /** The hub members sign in to. */
  hub: { slug: string } | { teamId: string };
  refresh?: RefreshMode;
  /** Default: memory. */
  storage?: StorageAdapter;
  /** Refresh this many seconds before the access token expires (at most half its lifetime). */
  refreshMarginSeconds?: number;
  /** Refresh on a timer before expiry (default true); otherwise on the next call that needs a token. */
  autoRefresh?: boolean;
  /** BroadcastChannel name shared by this origin's tabs; `false` disables. */
  channel?: string | false;
  /**
   * The member's language (BCP 47: "de", "fr-CH") for the mail register/requestLink send
   * and, once a link signs in, for later mail. Default: the browser's Accept-Language.
   */
  locale?: string;
  fetch?: (request: Request) => Promise<Response>;
  now?: () => number;
}

const PREFIX = "/api/v1/contact-auth";
const SESSION_KEY = "session";
const VERIFIER_KEY = "pkce_verifier";
const REFRESH_FAILURES = new Set(["refresh_token_missing", "refresh_token_invalid", "refresh_token_reused"]);

type Message = { t: "session"; s: Session } | { t: "signed_out" };
type Listener = (event: AuthChangeEvent, session: Session | null) => void;

function decodeClaims(jwt: string): AccessClaims {
  const part = jwt.split(".")[1] ?? "";
  const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
  const bytes = Uint8Array.from(atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4)), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes)) as AccessClaims;
}

export type ContactAuth = ReturnType<typeof createContactAuth>;

/** The client: typed calls plus the session layer. */
export function createContactAuth(options: ContactAuthOptions) {
  const mode: RefreshMode = options.refresh ?? "cookie";
  const storage = options.storage ?? memoryStorage();
  const now = options.now ?? (() => Date.now());
  const margin = (options.refreshMarginSeconds ?? 60) * 1000;
  const autoRefresh = options.autoRefresh ?? true;
  const hub = "slug" in options.hub ? { slug: options.hub.slug } : { team_id: options.hub.teamId };
  const fetchImpl = options.fetch ?? ((r: Request) => globalThis.fetch(r));
  const headers: Record<string, string> = mode === "partitioned" ? { "Refresh-Cookie": "partitioned" } : {};
  const clientOptions = {
    baseUrl: options.baseUrl.replace(/\/$/, ""),
    fetch: fetchImpl,
    // Cookie modes need the browser to send and accept the cookie, also cross-site (C).
    credentials: (mode === "body" ? "omit" : "include") as RequestCredentials,
    headers,
  };
  /** Routes that authenticate with the refresh token or nothing. */
  const publicApi = createClient<paths>(clientOptions);
  /** Routes that need the access token: the middleware adds it, refreshing first if due. */
  const api = createClient<paths>(clientOptions);
  api.use({
    async onRequest({ request }) {
      const token = await getAccessToken();
      if (token) request.headers.set("Authorization", `Bearer ${token}`);
      return request;
    },
  });

  let session: Session | null = load();
  let inflight: Promise<Session | null> | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let initialized: Promise<Session | null> | null = null;
  const listeners = new Set<Listener>();
  const channelName = options.channel ?? "contact-auth";
  const channel =
    channelName !== false && typeof BroadcastChannel !== "undefined" ? new BroadcastChannel(channelName) : null;
  if (channel) channel.onmessage = (e: MessageEvent<Message>) => receive(e.data);
  schedule();

  function load(): Session | null {
    try {
      const raw = storage.get(SESSION_KEY);
      const s = raw ? (JSON.parse(raw) as Session) : null;
      // A refresh token never belongs in storage outside body mode.
      if (s && mode !== "body") delete s.refreshToken;
      return s && typeof s.accessToken === "string" ? s : null;
    } catch {
      return null;
    }
  }

  function emit(event: AuthChangeEvent) {
    for (const l of [...listeners]) {
      try {
        l(event, session);
      } catch {
        // A listener's error must not break the session layer.
      }
    }
  }

  function schedule() {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (!autoRefresh || !session) return;
    const at = session.expiresAt - Math.min(margin, (session.lifetime * 1000) / 2);
    timer = setTimeout(() => {
      void refresh().catch(() => {
        // Offline or 5xx: keep the session and try again shortly.
        timer = setTimeout(schedule, 10_000);
      });
    }, Math.max(0, at - now()));
    (timer as { unref?: () => void }).unref?.();
  }

  /** Adopts a session (from the API or another tab) without telling the other tabs. */
  function adopt(next: Session | null, event: AuthChangeEvent) {
    session = next;
    if (next) storage.set(SESSION_KEY, JSON.stringify(next));
    else storage.remove(SESSION_KEY);
    schedule();
    emit(event);
  }

  function receive(m: Message) {
    if (m?.t === "session" && m.s && typeof m.s.accessToken === "string") {
      const s = { ...m.s };
      if (mode !== "body") delete s.refreshToken;
      adopt(s, session ? "TOKEN_REFRESHED" : "SIGNED_IN");
    } else if (m?.t === "signed_out" && session) {
      adopt(null, "SIGNED_OUT");
    }
  }

  function fromPair(pair: TokenPair): Session {
    const s: Session = {
      accessToken: pair.access_token,
      expiresAt: now() + pair.expires_in * 1000,
      lifetime: pair.expires_in,
      claims: decodeClaims(pair.access_token),
    };
    if (mode === "body") s.refreshToken = pair.refresh_token;
    return s;
  }

  function signedIn(pair: TokenPair, event: AuthChangeEvent): Session {
    const s = fromPair(pair);
    adopt(s, event);
    channel?.postMessage({ t: "session", s } satisfies Message);
    return s;
  }

  function signedOut() {
    const had = session !== null;
    adopt(null, "SIGNED_OUT");
    if (had) channel?.postMessage({ t: "signed_out" } satisfies Message);
  }

  /** Unwraps an openapi-fetch result: the data, or a typed error. */
  async function call<T>(p: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
    let r: { data?: T; error?: unknown; response: Response };
    try {
      r = await p;
    } catch (e) {
      throw e instanceof ContactAuthError ? e : networkError(e);
    }
    if (!r.response.ok) throw toError(r.response, r.error);
    return r.data as T;
  }

  /** Runs an authenticated call; a 401 `unauthorized` (an access token the server no longer
   * takes) refreshes once and retries, and signs out when that fails. */
  async function authed<T>(run: () => Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
    try {
      return await call(run());
    } catch (e) {
      if (!(e instanceof ContactAuthError) || e.code !== "unauthorized" || !session) throw e;
      const retryFrom = session;
      await refresh();
      if (!session || session === retryFrom) throw e;
      return await call(run());
    }
  }

  async function doRefresh(): Promise<Session | null> {
    const token = session?.refreshToken;
    if (mode === "body" && !token) return null;
    const body =
      mode === "body"
        ? { data: { type: "refresh_requests" as const, attributes: { refresh_token: token } } }
        : { data: { type: "refresh_requests" as const } };
    try {
      const pair = await call(publicApi.POST(`${PREFIX}/refresh`, { body }));
      return signedIn(pair, session ? "TOKEN_REFRESHED" : "SIGNED_IN");
    } catch (e) {
      // Another tab may have rotated the token meanwhile (body mode): its pair arrived here.
      if (mode === "body" && session && session.refreshToken !== token) return session;
      if (e instanceof ContactAuthError && REFRESH_FAILURES.has(e.code)) {
        signedOut();
        return null;
      }
      throw e;
    }
  }

  /** One refresh at a time in this tab; concurrent callers share it. */
  function refresh(): Promise<Session | null> {
    inflight ??= doRefresh().finally(() => {
      inflight = null;
    });
    return inflight;
  }

  /** A valid access token, refreshed first when it is due; null when signed out. */
  async function getAccessToken(): Promise<string | null> {
    if (!session && mode !== "body") await initialize();
    if (!session) return null;
    if (now() >= session.expiresAt - Math.min(margin, (session.lifetime * 1000) / 2)) {
      const s = await refresh();
      return s?.accessToken ?? null;
    }
    return session.accessToken;
  }

  /**
   * The session at start: from storage, else (cookie modes) from the refresh cookie. Emits
   * INITIAL_SESSION once. Safe to call repeatedly.
   */
  function initialize(): Promise<Session | null> {
    initialized ??= (async () => {
      if (!session && mode !== "body") {
        try {
          const pair = await call(publicApi.POST(`${PREFIX}/refresh`, { body: { data: { type: "refresh_requests" } } }));
          session = fromPair(pair);
          storage.set(SESSION_KEY, JSON.stringify(session));
          schedule();
        } catch {
          // No cookie, or it no longer works: signed out.
        }
      }
      emit("INITIAL_SESSION");
      return session;
    })();
    return initialized;
  }

  async function bind(): Promise<{ code_challenge: string; code_challenge_method: "S256" }> {
    const verifier = createVerifier();
    storage.set(VERIFIER_KEY, verifier);
    return { code_challenge: await challengeOf(verifier), code_challenge_method: "S256" };
  }

  type SendInput = { email: string; redirectUrl?: string };
  const sendAttributes = async (input: SendInput) => {
    const bound = { ...(await bind()), ...(options.locale ? { locale: options.locale } : {}) };
    if ("slug" in options.hub) {
      const redirect = input.redirectUrl ? { redirect_url: input.redirectUrl } : {};
      return { email: input.email, slug: options.hub.slug, ...redirect, ...bound };
    }
    if (input.redirectUrl) {
      throw new ContactAuthError(422, "redirect_url_requires_slug", "A redirect URL needs the hub's slug.");
    }
    return { email: input.email, team_id: options.hub.teamId, ...bound };
  };

  async function consumed(
    result: Schemas["ConsumeResult"] | Schemas["UndoResult"] | Schemas["EndSessionsResult"],
  ) {
    if ("access_token" in result) {
      storage.remove(VERIFIER_KEY);
      signedIn(result, "SIGNED_IN");
    }
    return result;
  }

  const consumeBody = (attributes: Record<string, unknown>) => {
    const verifier = storage.get(VERIFIER_KEY);
    return { data: { type: "magic_link_consumes" as const, attributes: { ...attributes, ...(verifier ? { code_verifier: verifier } : {}) } } };
  };

  return {
    /** The typed openapi-fetch client for every route; member routes get the access token. */
    api,
    get session(): Session | null {
      return session;
    },
    initialize,
    getAccessToken,
    refresh,

    /** `fn(event, session)` on every change; returns the unsubscribe function. */
    onAuthStateChange(fn: Listener): () => void {
      listeners.add(fn);
      return () => void listeners.delete(fn);
    },

    /** Registers by magic link (always resolves when accepted: 202), bound to this browser. */
    async register(input: SendInput): Promise<void> {
      await call(publicApi.POST(`${PREFIX}/register`, { body: { data: { type: "register_requests", attributes: await sendAttributes(input) } } }));
    },

    /** Requests a sign-in link and code, bound to this browser. */
    async requestLink(input: SendInput): Promise<void> {
      await call(publicApi.POST(`${PREFIX}/magic`, { body: { data: { type: "magic_link_requests", attributes: await sendAttributes(input) } } }));
    },

    /** Consumes a link's token (with this browser's verifier). */
    async consume(token: string) {
      return consumed(await call(publicApi.POST(`${PREFIX}/magic/consume`, { body: consumeBody({ token }) as never })));
    },

    /** Signs in with the 6-digit code from the mail. */
    async consumeCode(email: string, code: string) {
      return consumed(await call(publicApi.POST(`${PREFIX}/magic/consume`, { body: consumeBody({ email, code, ...hub }) as never })));
    },

    /**
     * A link with `redirect_url` lands on `<redirect_url>#token=…`: consumes it, removes the
     * fragment from the address bar and history, and returns the result (null without one).
     */
    async handleRedirect(href: string = globalThis.location?.href ?? "") {
      const url = new URL(href);
      const token = new URLSearchParams(url.hash.slice(1)).get("token");
      if (!token) return null;
      url.hash = "";
      globalThis.history?.replaceState(globalThis.history.state, "", url.pathname + url.search);
      return this.consume(token);
    },

    async login(email: string, password: string): Promise<Session> {
      const pair = await call(
        publicApi.POST(`${PREFIX}/login`, { body: { data: { type: "login_requests", attributes: { email, password, ...hub } } } as never }),
      );
      return signedIn(pair, "SIGNED_IN");
    },

    /** Ends this session on the server (and in every tab). Never throws for the server's answer. */
    async signOut(): Promise<void> {
      const token = session?.refreshToken;
      const attributes = mode === "body" && token ? { refresh_token: token } : undefined;
      try {
        await call(publicApi.POST(`${PREFIX}/logout`, { body: { data: { type: "refresh_requests", ...(attributes ? { attributes } : {}) } } }));
      } finally {
        signedOut();
      }
    },

    /** Ends every session of the member (all devices). */
    async signOutEverywhere(): Promise<void> {
      await authed(() => api.POST(`${PREFIX}/logout-everywhere`));
      signedOut();
    },

    me: async (): Promise<Contact> => (await authed(() => api.GET(`${PREFIX}/me`))).data,

    updateMe: async (attributes: ContactPatch): Promise<Contact> =>
      (await authed(() => api.PATCH(`${PREFIX}/me`, { body: { data: { type: "contacts", attributes } } }))).data,

    sessions: async (): Promise<SessionResource[]> => (await authed(() => api.GET(`${PREFIX}/me/sessions`))).data,

    /** Ends one session; ending this one signs this client out. */
    async endSession(id: string): Promise<void> {
      await authed(() => api.DELETE(`${PREFIX}/me/sessions/{id}`, { params: { path: { id } } }));
      if (id === session?.claims.sid) signedOut();
    },

    logoutOthers: async (): Promise<number> => {
      const r = await authed(() => api.POST(`${PREFIX}/logout-others`));
      return r.meta.ended;
    },

    /** Sets the first password (after a sign-in by link or code). */
    async setPassword(password: string): Promise<void> {
      await authed(() => api.POST(`${PREFIX}/me/password`, { body: { data: { type: "password_sets", attributes: { password } } } }));
    },

    /** Changes the password; every other session ends, this one gets a new pair. */
    async changePassword(newPassword: string, currentPassword?: string): Promise<void> {
      const r = await authed(() =>
        api.POST(`${PREFIX}/me/password/change`, {
          body: { data: { type: "password_changes", attributes: { new_password: newPassword, ...(currentPassword ? { current_password: currentPassword } : {}) } } },
        }),
      );
      signedIn(r.meta, "TOKEN_REFRESHED");
    },

    /** Stops the timer and the channel (tests, hot reload). */
    close(): void {
      if (timer !== undefined) clearTimeout(timer);
      channel?.close();
      listeners.clear();
    },
  };
}
