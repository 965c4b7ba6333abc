// The console is plain TypeScript on the DOM (no framework): every node is created with
// createElement/textContent, so no string from a skill is ever parsed as HTML.
import { defineConfig } from "vitest/config";

export default defineConfig({
  base: "./",
  build: {
    // Served by the daemon from build/console; never committed.
    outDir: "../build/console",
    emptyOutDir: true,
    sourcemap: false,
  },
  test: {
    environment: "jsdom",
    globals: true,
    include: ["tests/**/*.test.ts"],
  },
});
