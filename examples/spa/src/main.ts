// The example frontend: every call goes through @contact-auth/client. Query parameters:
//   mode=cookie|body|partitioned  the refresh mode (README "Refresh modes"; default cookie)
//   api=<origin>                  the API (default: this server's /api proxy for cookie,
//                                 the local stack for body and partitioned)
//   hub=<slug>                    default member-academy
//   auto=0                        no refresh timer: the next call refreshes when due
import { ContactAuthError, createContactAuth, localStorageAdapter, type RefreshMode, type Session } from "@contact-auth/client";

declare const __API_URL__: string;

const q = new URLSearchParams(location.search);
const mode = (["cookie", "body", "partitioned"].includes(q.get("mode") ?? "") ? q.get("mode") : "cookie") as RefreshMode;
const api = q.get("api") ?? (mode === "cookie" ? "" : __API_URL__);
const hub = q.get("hub") ?? "member-academy";

const auth = createContactAuth({
  baseUrl: api,
  hub: { slug: hub },
  refresh: mode,
  // localStorage: a link opened in a new tab finds the verifier of the browser that asked.
  storage: localStorageAdapter(`contact-auth:${mode}:`),
  autoRefresh: q.get("auto") !== "0",
  // The mail's language: ?lang=de, else the browser's (the server reads Accept-Language).
  ...(q.get("lang") ? { locale: q.get("lang") as string } : {}),
});

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const input = (id: string) => $<HTMLInputElement>(id);
let email = "";

function say(text: string, kind: "message" | "notice" = "notice") {
  $("message").textContent = kind === "message" ? text : "";
  $("notice").textContent = kind === "notice" ? text : "";
}

function explain(e: unknown): string {
  if (!(e instanceof ContactAuthError)) return String(e);
  if (e.code === "magic_link_invalid" && e.reason === "verifier_mismatch") {
    return "This link was requested in another browser: open it there, or type its code on the page that asked for it.";
  }
  if (e.code === "rate_limited") return `Too many attempts. Try again in ${e.retryAfter ?? 60} seconds.`;
  return `${e.message} (${e.code}${e.reason ? `, ${e.reason}` : ""})`;
}

/** Runs a UI action: shows its error instead of throwing. */
const act = (fn: () => Promise<unknown>) => async (ev?: Event) => {
  ev?.preventDefault();
  try {
    await fn();
  } catch (e) {
    say(explain(e), "message");
  }
};

async function loadAccount() {
  const [me, sessions] = await Promise.all([auth.me(), auth.sessions()]);
  $("me-email").textContent = me.attributes.email;
  $("me-password").textContent = me.attributes.has_password ? "set" : "not set";
  const list = $("sessions");
  list.replaceChildren(
    ...sessions.map((s) => {
      const li = document.createElement("li");
      li.dataset.session = s.id;
      li.textContent = `${s.attributes.device} · ${s.attributes.network} · ${s.attributes.amr.join(", ")}${s.attributes.current ? " · this session" : ""} `;
      const end = document.createElement("button");
      end.textContent = "End";
      end.addEventListener("click", act(async () => {
        await auth.endSession(s.id);
        if (!s.attributes.current) await loadAccount();
      }));
      li.append(end);
      return li;
    }),
  );
}

function render(session: Session | null) {
  $("signed-out").hidden = session !== null;
  $("signed-in").hidden = session === null;
  $("status").textContent = session ? `Signed in (${session.claims.amr.join(", ")})` : "Signed out";
  if (session) void act(loadAccount)();
}

auth.onAuthStateChange((event, session) => {
  const li = document.createElement("li");
  li.textContent = `${new Date().toISOString().slice(11, 19)} ${event}`;
  li.dataset.event = event;
  $("log").append(li);
  if (event !== "TOKEN_REFRESHED") render(session);
});

$("hub").textContent = hub;
$("mode").textContent = mode;

$("link-form").addEventListener("submit", act(async () => {
  email = input("email").value.trim();
  const here = `${location.origin}${location.pathname}${location.search}`;
  await auth.requestLink({ email, redirectUrl: here });
  say(`If ${email} is a member, a link and a code are on their way.`);
}));

$("register").addEventListener("click", act(async () => {
  email = input("email").value.trim();
  if (!input("email").reportValidity()) return;
  await auth.register({ email, redirectUrl: `${location.origin}${location.pathname}${location.search}` });
  say(`Check ${email}: the link (or its code) creates your account.`);
}));

$("code-form").addEventListener("submit", act(async () => {
  await auth.consumeCode(email || input("email").value.trim(), input("code").value);
  say("");
}));

$("login-form").addEventListener("submit", act(async () => {
  await auth.login(input("email").value.trim(), input("password").value);
  say("");
}));

$("reload").addEventListener("click", act(loadAccount));
$("logout-others").addEventListener("click", act(async () => {
  const n = await auth.logoutOthers();
  say(`Ended ${n} other session${n === 1 ? "" : "s"}.`);
  await loadAccount();
}));
$("password-form").addEventListener("submit", act(async () => {
  await auth.setPassword(input("new-password").value);
  input("new-password").value = "";
  say("Password set.");
  await loadAccount();
}));
$("sign-out").addEventListener("click", act(() => auth.signOut()));

// A link with our redirect_url lands here as #token=…: consume it (the client removes it
// from the address bar), then restore whatever session there is.
const landed = act(async () => {
  const r = await auth.handleRedirect();
  if (r && "sessions_ended" in r) say(`Ended ${r.sessions_ended} session(s).`);
});
addEventListener("hashchange", landed);
await landed();
await auth.initialize();
