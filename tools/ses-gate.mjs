// An SES v2 stand-in with SES's limits, in front of the SES sink (aws-ses-v2-local):
// SendEmail beyond `rate` per second answers what SES answers (429
// TooManyRequestsException, "Maximum sending rate exceeded"), and the gate can be switched
// to answer as an account over its daily quota, paused or suspended. Every other request
// (the sink's /store, /health-check) passes through untouched.
//
//   import { startSesGate } from "./ses-gate.mjs";
//   const gate = await startSesGate({ upstream: sesUrl, port, rate: 14 });
//   POST {gate.url}/__gate {"rate": 14, "mode": "ok" | "quota" | "paused" | "suspended"}
//   GET  {gate.url}/__gate -> {"rate", "mode", "accepted", "throttled", "refused", "perSecond"}
//
// tools/stack.mjs starts it (its own process) in front of the sink for the replay's mailer
// scenarios (REPLAY_SES_GATE_URL) and for `make load` (tools/load.mjs).
// Run alone: node tools/ses-gate.mjs <upstream> <port> [rate].

import { createServer } from "node:http";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";

const SEND_PATH = "/v2/email/outbound-emails";

/** What SES answers in each refusing mode: [status, error type, message]. */
const REFUSALS = {
  rate: [429, "TooManyRequestsException", "Maximum sending rate exceeded."],
  quota: [429, "TooManyRequestsException", "Daily message quota exceeded."],
  paused: [400, "SendingPausedException", "Email sending is disabled for this account."],
  suspended: [400, "AccountSuspendedException", "The account is suspended from sending email."],
};

export async function startSesGate({ upstream, port = 0, rate = 14, host = "127.0.0.1" }) {
  const state = { rate, mode: "ok", accepted: 0, throttled: 0, refused: 0, perSecond: {} };
  let second = 0;
  let inSecond = 0;

  const refuse = (res, kind) => {
    const [status, type, message] = REFUSALS[kind];
    res.writeHead(status, { "content-type": "application/json", "x-amzn-errortype": type });
    res.end(JSON.stringify({ __type: type, message }));
  };

  const forward = async (req, res, body) => {
    try {
      const r = await fetch(`${upstream}${req.url}`, {
        method: req.method,
        // Every header but the hop-by-hop ones (the sink wants the SigV4 Authorization).
        headers: Object.fromEntries(Object.entries(req.headers).filter(([k]) => !["host", "connection", "content-length", "transfer-encoding"].includes(k))),
        body: ["GET", "HEAD"].includes(req.method) ? undefined : body,
      });
      const buf = Buffer.from(await r.arrayBuffer());
      res.writeHead(r.status, { "content-type": r.headers.get("content-type") || "application/json" });
      res.end(buf);
    } catch (e) {
      res.writeHead(502, { "content-type": "application/json" });
      res.end(JSON.stringify({ message: `gate: upstream failed: ${e.message}` }));
    }
  };

  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      const body = Buffer.concat(chunks);
      if (req.url === "/__gate") {
        if (req.method === "POST") {
          const set = JSON.parse(body.toString() || "{}");
          if (set.rate !== undefined) state.rate = Number(set.rate);
          if (set.mode !== undefined) state.mode = set.mode;
          if (set.reset) Object.assign(state, { accepted: 0, throttled: 0, refused: 0, perSecond: {} });
        }
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify(state));
        return;
      }
      if (req.method === "POST" && req.url.startsWith(SEND_PATH)) {
        if (state.mode !== "ok") {
          state.refused++;
          return refuse(res, state.mode);
        }
        const now = Math.floor(Date.now() / 1000);
        if (now !== second) {
          second = now;
          inSecond = 0;
        }
        if (inSecond >= state.rate) {
          state.throttled++;
          return refuse(res, "rate");
        }
        inSecond++;
        state.accepted++;
        state.perSecond[now] = (state.perSecond[now] || 0) + 1;
      }
      await forward(req, res, body);
    });
  });
  await new Promise((ok) => server.listen(port, host, ok));
  const url = `http://${host}:${server.address().port}`;
  return { url, state, close: () => new Promise((ok) => server.close(ok)) };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [upstream, port, rate] = process.argv.slice(2);
  if (!upstream || !port) {
    console.error("usage: node tools/ses-gate.mjs <upstream url> <port> [rate per second]");
    process.exit(2);
  }
  const gate = await startSesGate({ upstream, port: Number(port), rate: Number(rate || 14) });
  console.log(`ses gate on ${gate.url} -> ${upstream}, ${gate.state.rate}/s`);
}
