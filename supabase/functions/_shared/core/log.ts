/**
 * Structured, redacted logging. Every line passes through `redactSecrets`, so a key that slips
 * into a message or an error still never reaches the log. Tests swap the sink to capture lines.
 */

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogSink = (level: LogLevel, line: string) => void;

const consoleSink: LogSink = (level, line) => {
  if (level === "error" || level === "warn") console.error(line);
  else console.log(line);
};

let sink: LogSink = consoleSink;

/** Replace where log lines go (tests capture them); returns a function that restores the old sink. */
export function setLogSink(next: LogSink): () => void {
  const previous = sink;
  sink = next;
  return () => {
    sink = previous;
  };
}

const SECRET_PATTERNS: RegExp[] = [
  /\bBearer\s+[^\s"',]+/gi,
  /\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g,
  /\b(?:sk|pplx|AIza)[-_A-Za-z0-9]{6,}/g,
  /\bshr_[A-Za-z0-9_-]{6,}/g,
  // The value of any JSON field named like a credential, whatever its shape (custom endpoint keys).
  /(?<="(?:api[_-]?key|x-api-key|x-goog-api-key|authorization|password|passphrase|secret|share_?token|encryption_?key)"\s*:\s*")(?:[^"\\]|\\.)+/gi,
];

/** Masks anything shaped like a provider key, JWT, bearer credential or share token. */
export function redactSecrets(text: string): string {
  return SECRET_PATTERNS.reduce((out, pattern) => out.replace(pattern, "[REDACTED]"), text);
}

/** Turns an unknown thrown value into loggable fields: name and message, never the stack. */
export function describeError(error: unknown): Record<string, unknown> {
  if (error instanceof Error) {
    const fields: Record<string, unknown> = { name: error.name, message: error.message };
    const code = (error as { code?: unknown }).code;
    if (typeof code === "string") fields.code = code;
    if (error.cause !== undefined) fields.cause = describeError(error.cause);
    return fields;
  }
  return { message: String(error) };
}

function write(level: LogLevel, message: string, fields?: Record<string, unknown>): void {
  const line = JSON.stringify({ level, time: new Date().toISOString(), message, ...fields });
  sink(level, redactSecrets(line));
}

export const log = {
  debug: (message: string, fields?: Record<string, unknown>) => write("debug", message, fields),
  info: (message: string, fields?: Record<string, unknown>) => write("info", message, fields),
  warn: (message: string, fields?: Record<string, unknown>) => write("warn", message, fields),
  error: (message: string, fields?: Record<string, unknown>) => write("error", message, fields),
};
