import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // Convex's default runtime is not Node: test the functions in a comparable one.
    environment: "edge-runtime",
    server: { deps: { inline: ["convex-test"] } },
    include: ["tests/**/*.test.ts"],
  },
});
