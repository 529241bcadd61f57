// Issue 19, events: every auth change writes an outbox event in its own transaction; the
// local events function (contact-auth-admin dev-events, the code the Lambda runs) sends it
// to the bus (here the stack's EventBridge stand-in, tools/events-sink.mjs) and to the
// team's webhook, signed per Standard Webhooks — verified here with the spec's own npm
// library (`standardwebhooks`), not with this service's code. A webhook URL on a private
// address is refused, and the bus still gets the event.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { Webhook } from "standardwebhooks";
import { API_URL, DDB_URL, SES_URL, TABLE, EVENTS_URL, uniqueEmail, signUp, call, doc, admin, ddb, itemKey, sleep, recordSecret } from "./helpers.mjs";
import { admin as adminWith, functionEnv, freePort } from "../../tools/stack.mjs";

const TEAM = "team_events";
const SLUG = "events-hub";
let receiver;
let received = []; // { headers, body }
let hookUrl;
let secret;

const devAdmin = (...args) => adminWith({ ...functionEnv({ ddbUrl: DDB_URL, sesUrl: SES_URL, table: TABLE, publicBaseUrl: API_URL }), EVENTS_WEBHOOK_DEV: "1" }, ...args);

before(async () => {
  const port = await freePort();
  receiver = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8"), path: req.url });
      res.writeHead(204);
      res.end();
    });
  });
  await new Promise((r) => receiver.listen(port, "127.0.0.1", r));
  hookUrl = `http://127.0.0.1:${port}/hooks/auth`;
  admin("team", "--id", TEAM, "--name", "Events Team", "--primary-hub", "hub_events");
  admin("hub", "--id", "hub_events", "--slug", SLUG, "--team", TEAM, "--title", "Events Hub");
  const out = devAdmin("events", "--team", TEAM, "--webhook-url", hookUrl);
  secret = /whsec_[A-Za-z0-9+/=]+/.exec(out)?.[0];
  recordSecret(secret);
  assert.ok(secret, `no secret printed: ${out}`);
});

after(() => receiver && receiver.close());

/** The webhook deliveries whose payload names `contact`, waiting for `n` of them. */
async function deliveriesFor(contact, n, timeoutMs = 20000) {
  const start = Date.now();
  for (;;) {
    const mine = received.filter((r) => r.body.includes(contact));
    if (mine.length >= n || Date.now() - start > timeoutMs) return mine;
    await sleep(100);
  }
}

async function busEventsFor(contact, n, timeoutMs = 20000) {
  const start = Date.now();
  for (;;) {
    const { events } = await (await fetch(`${EVENTS_URL}/events`)).json();
    const mine = events.filter((e) => e.detail.includes(contact));
    if (mine.length >= n || Date.now() - start > timeoutMs) return mine;
    await sleep(100);
  }
}

test("a registration, its session and a logout reach the bus and the team's webhook, signed per Standard Webhooks", { timeout: 60000 }, async () => {
  const email = uniqueEmail("events");
  const pair = await signUp(email, { slug: SLUG });
  const contact = JSON.parse(Buffer.from(pair.access_token.split(".")[1], "base64url")).sub;
  const sid = JSON.parse(Buffer.from(pair.access_token.split(".")[1], "base64url")).sid;

  const hooks = await deliveriesFor(contact, 3);
  const wh = new Webhook(secret);
  const payloads = hooks.map((h) => {
    assert.equal(h.path, "/hooks/auth");
    // The independent library checks the signature, the id and the timestamp's age.
    const verified = wh.verify(h.body, {
      "webhook-id": h.headers["webhook-id"],
      "webhook-timestamp": h.headers["webhook-timestamp"],
      "webhook-signature": h.headers["webhook-signature"],
    });
    assert.equal(h.headers["webhook-id"], verified.data.id, "webhook-id is the event id");
    return verified;
  });
  const types = payloads.map((p) => p.type).sort();
  assert.deepEqual(types, ["contact.created", "membership.created", "session.created"]);
  for (const p of payloads) {
    assert.equal(p.data.contact_id, contact);
    assert.equal(p.data.team_id, TEAM);
    assert.ok(!JSON.stringify(p).includes(email), "the email went out without the team's opt-in");
    assert.ok(!JSON.stringify(p).includes(pair.refresh_token) && !JSON.stringify(p).includes(pair.access_token));
  }
  assert.equal(payloads.find((p) => p.type === "session.created").data.session_id, sid);
  // A tampered body fails the same library.
  assert.throws(() => wh.verify(hooks[0].body.replace(contact, "someone-else"), {
    "webhook-id": hooks[0].headers["webhook-id"], "webhook-timestamp": hooks[0].headers["webhook-timestamp"], "webhook-signature": hooks[0].headers["webhook-signature"],
  }));

  // The bus got the same events: source contact-auth, detail-type the event name.
  const bus = await busEventsFor(contact, 3);
  assert.deepEqual(bus.map((e) => e.detail_type).sort(), types);
  assert.ok(bus.every((e) => e.source === "contact-auth"));
  assert.deepEqual(bus.map((e) => JSON.parse(e.detail).id).sort(), payloads.map((p) => p.data.id).sort());

  // A logout: session.ended with its reason.
  const out = await call("POST", "/logout", { body: doc("refresh_requests", { refresh_token: pair.refresh_token }) });
  assert.equal(out.status, 204);
  const after = await deliveriesFor(contact, 4);
  const ended = after.map((h) => JSON.parse(h.body)).find((p) => p.type === "session.ended");
  assert.ok(ended, "no session.ended delivery");
  assert.equal(ended.data.reason, "logout");
  assert.equal(ended.data.session_id, sid);
  // Each event once (the marks on the outbox items), each with its own id.
  const ids = after.map((h) => h.headers["webhook-id"]);
  assert.equal(new Set(ids).size, ids.length, `duplicate deliveries: ${ids}`);
});

test("a webhook on a private address is refused at configuration and at delivery; the bus still gets the event", { timeout: 60000 }, async () => {
  // The admin command refuses a literal private address (the metadata service).
  assert.throws(() => devAdmin("events", "--team", "team_ssrf", "--webhook-url", "http://169.254.169.254/latest/meta-data/"), /private_address/);
  assert.throws(() => admin("events", "--team", "team_ssrf", "--webhook-url", "http://hooks.example.com/"), /not_https/);
  // Settings written around the command (or a name that later resolves privately): the
  // delivery refuses it and marks the event so.
  admin("team", "--id", "team_ssrf", "--name", "SSRF Team", "--primary-hub", "hub_ssrf");
  admin("hub", "--id", "hub_ssrf", "--slug", "ssrf-hub", "--team", "team_ssrf", "--title", "SSRF Hub");
  const key = itemKey("event-settings", "--team", "team_ssrf");
  await ddb("PutItem", { TableName: TABLE, Item: { ...key, webhook_url: { S: "http://10.0.0.1:8080/steal" }, webhook_secret: { S: secret }, include_email: { BOOL: false } } });
  const email = uniqueEmail("ssrf");
  const pair = await signUp(email, { slug: "ssrf-hub" });
  const contact = JSON.parse(Buffer.from(pair.access_token.split(".")[1], "base64url")).sub;
  const bus = await busEventsFor(contact, 3);
  assert.equal(bus.length, 3, "the bus must still get the events");
  const id = JSON.parse(bus[0].detail).id;
  const start = Date.now();
  let item;
  while (Date.now() - start < 10000) {
    item = (await ddb("GetItem", { TableName: TABLE, Key: itemKey("event", "--id", id), ConsistentRead: true })).Item;
    if (item?.webhook_outcome) break;
    await sleep(100);
  }
  assert.equal(item?.webhook_outcome?.S, "refused");
  assert.equal(received.filter((r) => r.body.includes(contact)).length, 0);
});
