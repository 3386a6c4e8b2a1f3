import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// Built into ../studio_dist, served by the server at "/" under a strict CSP:
// no inline scripts, every asset under /assets/ with a content hash.
export default defineConfig({
  base: "/",
  plugins: [react()],
  build: {
    outDir: "../studio_dist",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 2000,
  },
  server: { proxy: { "/api": "http://127.0.0.1:53000", "/healthz": "http://127.0.0.1:53000" } },
  test: { include: ["test/**/*.test.ts"], environment: "node" },
});
