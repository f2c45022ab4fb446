#!/usr/bin/env node
// `npm start` runs this first: builds the settings panel into dist/ when dist/ is missing or
// older than the panel's sources, so the local stack always serves a current panel at `/`.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const builtIndex = join(root, "dist", "index.html");
const sources = [
  join(root, "src"),
  join(root, "index.html"),
  join(root, "vite.config.ts"),
  join(root, "supabase", "functions", "_shared", "contract"),
];

function newestChange(path) {
  if (!existsSync(path)) return 0;
  const info = statSync(path);
  if (!info.isDirectory()) return info.mtimeMs;
  return Math.max(0, ...readdirSync(path).map((name) => newestChange(join(path, name))));
}

const builtAt = existsSync(builtIndex) ? statSync(builtIndex).mtimeMs : 0;
if (builtAt === 0 || Math.max(...sources.map(newestChange)) > builtAt) {
  console.log(builtAt === 0 ? "Building the settings panel (dist/ is missing)..." : "Rebuilding the settings panel...");
  const vite = join(root, "node_modules", ".bin", "vite");
  const result = spawnSync(vite, ["build", "--logLevel", "warn"], { cwd: root, stdio: "inherit" });
  if (result.status !== 0) {
    console.error("The settings panel did not build; the stack starts without it.");
  }
}
