#!/usr/bin/env node
// The local stand-in for the EventBridge bus (like the SES sink for mail): answers
// EventBridge's PutEvents (awsJson1_1, `X-Amz-Target: AWSEvents.PutEvents`) for the
// events function (AWS_ENDPOINT_URL_EVENTBRIDGE), keeps every entry in memory, and shows
// them: GET /events (JSON, oldest first: {events: [{source, detail_type, detail, bus,
// received_at}]}), GET / (a page that lists them, newest first). DELETE /events empties it.
// Usage: node tools/events-sink.mjs <port>
import { createServer } from "node:http";
import { randomUUID } from "node:crypto";

const port = Number(process.argv[2] || 8006);
const events = [];
const MAX = 10000;

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page() {
  const rows = [...events].reverse().map((e) => {
    let d = e.detail;
    try { d = JSON.stringify(JSON.parse(e.detail), null, 2); } catch { /* as sent */ }
    return `<tr><td>${escape(e.received_at)}</td><td><code>${escape(e.detail_type)}</code></td><td><pre>${escape(d)}</pre></td></tr>`;
  }).join("");
  return `<!doctype html><meta charset="utf-8"><title>contact-auth events</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem}td{vertical-align:top;border-top:1px solid #ddd;padding:.4rem .8rem}pre{margin:0}</style>
<h1>Auth events (${events.length})</h1><p>What the events function published to the bus (JSON: <a href="/events">/events</a>). Reload to refresh.</p>
<table><tr><th>received</th><th>detail-type</th><th>detail</th></tr>${rows}</table>`;
}

createServer(async (req, res) => {
  const send = (status, body, type = "application/json") => {
    res.writeHead(status, { "content-type": type });
    res.end(typeof body === "string" ? body : JSON.stringify(body));
  };
  try {
    if (req.method === "POST" && (req.headers["x-amz-target"] || "") === "AWSEvents.PutEvents") {
      const body = JSON.parse((await readBody(req)) || "{}");
      const out = [];
      for (const e of body.Entries || []) {
        events.push({ source: e.Source, detail_type: e.DetailType, detail: e.Detail, bus: e.EventBusName || "default", received_at: new Date().toISOString() });
        out.push({ EventId: randomUUID() });
      }
      if (events.length > MAX) events.splice(0, events.length - MAX);
      return send(200, { FailedEntryCount: 0, Entries: out }, "application/x-amz-json-1.1");
    }
    if (req.method === "POST") return send(400, { __type: "UnknownOperationException" }, "application/x-amz-json-1.1");
    const path = new URL(req.url, "http://x").pathname;
    if (req.method === "GET" && path === "/events") return send(200, { events });
    if (req.method === "DELETE" && path === "/events") { events.length = 0; return send(200, { events }); }
    if (req.method === "GET" && path === "/") return send(200, page(), "text/html; charset=utf-8");
    return send(404, { error: "not found" });
  } catch (e) {
    return send(400, { error: String(e.message || e) });
  }
}).listen(port, "127.0.0.1", () => console.log(`events sink on http://127.0.0.1:${port}`));
