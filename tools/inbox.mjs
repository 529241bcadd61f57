#!/usr/bin/env node
// Reads the local mail inbox (the SES v2 sink of `make dev`).
//   node tools/inbox.mjs token <email>   the token of the newest link mailed to <email>
//   node tools/inbox.mjs show <email>    that mail's subject and text
// Waits up to 10 s for a mail (the mailer sends within a second of the request).
// SES_URL (or SES_PORT) picks the inbox; default http://127.0.0.1:8005.

import { mailsTo } from "./stack.mjs";

const [cmd, email] = process.argv.slice(2);
const base = process.env.SES_URL || `http://127.0.0.1:${process.env.SES_PORT || 8005}`;
if (!["token", "show"].includes(cmd) || !email) {
  console.error("usage: node tools/inbox.mjs token|show <email>");
  process.exit(2);
}
const deadline = Date.now() + 10000;
for (;;) {
  const mine = await mailsTo(base, email);
  if (mine.length) {
    const mail = mine[mine.length - 1];
    if (cmd === "show") console.log(`Subject: ${mail.subject}\n\n${mail.body.text}`);
    else console.log(/#token=([A-Za-z0-9_-]+)/.exec(mail.body.text)[1]);
    process.exit(0);
  }
  if (Date.now() > deadline) {
    console.error(`no mail for ${email} in ${base}`);
    process.exit(1);
  }
  await new Promise((r) => setTimeout(r, 200));
}
