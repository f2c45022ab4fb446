/**
 * Finds secrets in text the suite captured (log lines, response bodies): the exact value, or any
 * run of 8 or more consecutive characters of it. Runs that lie inside a public prefix ("sk-",
 * "Bearer ", a JWT's standard header) are not secret and are ignored.
 */
import { setLogSink } from "../../supabase/functions/_shared/core/log.ts";
import { recordLeakScan } from "./figures.ts";

export const RUN_LENGTH = 8;

/** Prefixes every key or token of a kind shares; a run inside one says nothing about a secret. */
const PUBLIC_PREFIXES = [
  "Bearer ",
  "sk-",
  "sk-proj-",
  "sk-ant-",
  "pplx-",
  "AIza",
  "shr_",
  // base64url of {"alg":"HS256","typ":"JWT"}, the first segment of every project JWT.
  "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.",
];

export interface Leak {
  /** Which secret (its label, never its value). */
  secret: string;
  /** Where it was found, e.g. "log" or "response POST /functions/v1/x". */
  where: string;
  /** "exact" or the offset of the matching run inside the secret. */
  match: string;
}

export interface LeakScanner {
  /**
   * Registers a secret the suite uses. `publicPrefix` is the part every such value shares.
   * Everything captured before is scanned again for it, so a secret that only becomes known
   * after it was first used (a share token minted by publish) is caught in that first use too.
   */
  addSecret(label: string, value: string, publicPrefix?: string): void;
  /** Scans `text` now and remembers any leak. */
  capture(where: string, text: string): void;
  /**
   * Sends every log line to `capture` until the returned function is called: the logger's lines,
   * and whatever anything prints with `console.*` around it (a library, or code that skipped
   * the logger), which still reaches the console.
   */
  captureLogs(): () => void;
  leaks(): Leak[];
  scanned(): number;
  /** Adds this scanner's counts to the suite figures. */
  record(): void;
}

const CONSOLE_METHODS = ["log", "info", "warn", "error", "debug"] as const;

/** Hands every line printed with `console.*` to `onLine` as well; returns the undo. */
function captureConsole(onLine: (where: string, line: string) => void): () => void {
  const originals = CONSOLE_METHODS.map((method) => [method, console[method]] as const);
  for (const [method, original] of originals) {
    console[method] = (...args: unknown[]) => {
      onLine(
        `console.${method}`,
        args.map((a) => typeof a === "string" ? a : Deno.inspect(a)).join(" "),
      );
      original.apply(console, args);
    };
  }
  return () => {
    for (const [method, original] of originals) console[method] = original;
  };
}

function isPublic(run: string, secretPrefix: string): boolean {
  return [...PUBLIC_PREFIXES, secretPrefix].some((prefix) => prefix.includes(run));
}

export function createLeakScanner(): LeakScanner {
  /** 8-character run -> labels of the secrets that contain it. */
  const runs = new Map<string, { label: string; offset: number }>();
  const exact = new Map<string, string>();
  const found: Leak[] = [];
  let scanned = 0;
  /** Everything captured so far, for secrets registered later. */
  const history: { where: string; text: string }[] = [];

  /** Records the first leak of one secret (its exact value or any 8-character run) in `text`. */
  function scanFor(
    label: string,
    value: string,
    publicPrefix: string,
    where: string,
    text: string,
  ) {
    if (text.includes(value)) {
      found.push({ secret: label, where, match: "exact" });
      return;
    }
    for (let i = 0; i + RUN_LENGTH <= value.length; i++) {
      const run = value.slice(i, i + RUN_LENGTH);
      if (!isPublic(run, publicPrefix) && text.includes(run)) {
        found.push({ secret: label, where, match: `run at ${i}` });
        return;
      }
    }
  }

  const scanner: LeakScanner = {
    addSecret(label, value, publicPrefix = "") {
      if (value.length < RUN_LENGTH) throw new Error(`secret ${label} is too short to scan for`);
      exact.set(value, label);
      for (let i = 0; i + RUN_LENGTH <= value.length; i++) {
        const run = value.slice(i, i + RUN_LENGTH);
        if (!isPublic(run, publicPrefix) && !runs.has(run)) runs.set(run, { label, offset: i });
      }
      for (const seen of history) scanFor(label, value, publicPrefix, seen.where, seen.text);
    },
    capture(where, text) {
      scanned++;
      history.push({ where, text });
      let exactHit = false;
      for (const [value, label] of exact) {
        if (text.includes(value)) {
          found.push({ secret: label, where, match: "exact" });
          exactHit = true;
        }
      }
      if (exactHit) return;
      for (let i = 0; i + RUN_LENGTH <= text.length; i++) {
        const hit = runs.get(text.slice(i, i + RUN_LENGTH));
        if (hit) {
          found.push({ secret: hit.label, where, match: `run at ${hit.offset}` });
          return;
        }
      }
    },
    captureLogs() {
      const restoreSink = setLogSink((level, line) => scanner.capture(`log ${level}`, line));
      const restoreConsole = captureConsole((method, line) => scanner.capture(method, line));
      return () => {
        restoreConsole();
        restoreSink();
      };
    },
    leaks: () => [...found],
    scanned: () => scanned,
    record() {
      recordLeakScan(scanned, found.length);
    },
  };
  return scanner;
}
