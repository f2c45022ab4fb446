/// <reference types="vitest/config" />
/**
 * Builds the settings panel (src/, entry index.html) into dist/, which the local stack serves at `/`.
 * `vitest run` uses the same config for the panel's component tests (jsdom).
 */
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

export default defineConfig({
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false },
  server: { host: "127.0.0.1" },
  test: {
    environment: "jsdom",
    include: ["tests/ui/**/*.test.{ts,tsx}"],
    setupFiles: ["tests/ui/setup.ts"],
    restoreMocks: true,
    // The machine is shared; user-event typing is slow under load, so allow more than the 5 s default.
    testTimeout: 20_000,
  },
});
