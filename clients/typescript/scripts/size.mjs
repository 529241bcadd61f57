// The published ESM bundle's size: dist/index.js with openapi-fetch, minified by esbuild and
// gzipped. Fails above the budget (8 kB). Also proves tree-shaking: importing only the
// storage adapters must not pull in the client.
import { build } from "esbuild";
import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";

const BUDGET = 8 * 1024;
const entry = fileURLToPath(new URL("../dist/index.js", import.meta.url));

async function bundled(contents) {
  const r = await build({
    stdin: { contents, resolveDir: fileURLToPath(new URL("..", import.meta.url)), loader: "js" },
    bundle: true,
    minify: true,
    format: "esm",
    platform: "browser",
    write: false,
    logLevel: "silent",
  });
  return r.outputFiles[0].contents;
}

const all = await bundled(`export * from ${JSON.stringify(entry)};`);
const gz = gzipSync(all, { level: 9 }).length;
const one = await bundled(`export { memoryStorage } from ${JSON.stringify(entry)};`);
console.log(`@contact-auth/client: ${all.length} B minified, ${gz} B gzipped (budget ${BUDGET} B); memoryStorage alone: ${one.length} B`);
let failed = false;
if (gz > BUDGET) {
  console.error(`over the ${BUDGET} B budget`);
  failed = true;
}
if (one.length > 600) {
  console.error("importing memoryStorage alone pulled in more than itself: not tree-shakable");
  failed = true;
}
process.exit(failed ? 1 : 0);
