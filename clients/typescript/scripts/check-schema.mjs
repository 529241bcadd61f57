// src/schema.ts must be exactly what openapi-typescript makes of ../../openapi.yaml today:
// a route or field changed there and not regenerated here fails (npm run generate fixes it).
import openapiTS, { astToString } from "openapi-typescript";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const spec = new URL("../../../openapi.yaml", import.meta.url);
const committed = readFileSync(fileURLToPath(new URL("../src/schema.ts", import.meta.url)), "utf8");
const fresh = astToString(await openapiTS(spec));
const strip = (s) => s.replace(/^\/\*\*[\s\S]*?\*\/\s*/, "").trim();
if (strip(fresh) !== strip(committed)) {
  console.error("src/schema.ts does not match openapi.yaml: run `npm run generate -w @contact-auth/client`");
  process.exit(1);
}
console.log("src/schema.ts matches openapi.yaml");
