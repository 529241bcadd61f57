#!/usr/bin/env node
// Reads the local mail inbox (the SES v2 sink of `make dev`).
//   node tools/inbox.mjs token <email> [n]   the token of the newest link mailed to <email>
//   node tools/inbox.mjs code <email> [n]    the 6-digit sign-in code of that mail
//   node tools/inbox.mjs show <email> [n]    that mail's subject and text
// With n, the n-th mail to <email> (1 = the first), waiting until it arrives.
// Waits up to 10 s for a mail (the mailer sends within a second of the request).
// SES_URL (or SES_PORT) picks the inbox; default http://127.0.0.1:8005.

import { mailsTo } from "./stack.mjs";

const [cmd, email, nth] = process.argv.slice(2);
const base = process.env.SES_URL || `http://127.0.0.1:${process.env.SES_PORT || 8005}`;
const want = nth === undefined ? 1 : Number(nth);
if (!["token", "code", "show"].includes(cmd) || !email || !(want >= 1)) {
  console.error("usage: node tools/inbox.mjs token|code|show <email> [n]");
  process.exit(2);
}
const deadline = Date.now() + 10000;
for (;;) {
  const mine = await mailsTo(base, email);
  if (mine.length >= want) {
    const mail = nth === undefined ? mine[mine.length - 1] : mine[want - 1];
    if (cmd === "show") console.log(`Subject: ${mail.subject}\n\n${mail.body.text}`);
    else if (cmd === "token") console.log(/#token=([A-Za-z0-9_-]+)/.exec(mail.body.text)[1]);
    else {
      const m = /\b(\d{3}) (\d{3})\b/.exec(mail.body.text);
      if (!m) {
        console.error("that mail has no sign-in code");
        process.exit(1);
      }
      // The mailer makes a link the newest (the one its code belongs to) just after SES
      // accepted its mail; a person takes longer than that to type the code, a script
      // waits a moment.
      await new Promise((r) => setTimeout(r, 500));
      console.log(m[1] + m[2]);
    }
    process.exit(0);
  }
  if (Date.now() > deadline) {
    console.error(`no mail for ${email} in ${base}`);
    process.exit(1);
  }
  await new Promise((r) => setTimeout(r, 200));
}
