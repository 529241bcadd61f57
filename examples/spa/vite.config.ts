import { defineConfig } from "vite";
import { fileURLToPath } from "node:url";

// `npm run dev -w contact-auth-example-spa` (or `make dev`): http://localhost:5173, the demo
// hub's allowed origin. Refresh mode A needs the API on this site: /api is proxied to the
// local stack (API_URL, default http://127.0.0.1:3000), so the refresh cookie is
// first-party. Modes B and C call the API's own origin (?mode=body / ?mode=partitioned).
const api = process.env.API_URL ?? "http://127.0.0.1:3000";

export default defineConfig({
  resolve: {
    // The client's source, so the example needs no build step of the package.
    alias: { "@contact-auth/client": fileURLToPath(new URL("../../clients/typescript/src/index.ts", import.meta.url)) },
  },
  define: { __API_URL__: JSON.stringify(api) },
  server: {
    host: "localhost",
    port: Number(process.env.PORT ?? 5173),
    strictPort: true,
    proxy: { "/api": { target: api, changeOrigin: false } },
  },
  clearScreen: false,
});
