/**
 * The providers a user can bring a key for. Pure data with no imports, so the React panel
 * (src/) and the edge functions read the same list and the same key formats.
 */

export const SERVICES = [
  "openai",
  "gemini",
  "anthropic",
  "manus",
  "perplexity",
  "openrouter",
  "custom",
] as const;

export type Service = typeof SERVICES[number];

/** The named values a service stores; `base_url` only exists for the custom endpoint. */
export const CREDENTIAL_KEYS = ["api_key", "base_url"] as const;
export type CredentialKey = typeof CREDENTIAL_KEYS[number];

/** How a provider expects its key on an upstream request. */
export type KeyHeaderStyle = "bearer" | "x-api-key" | "x-goog-api-key" | "manus";

export interface ProviderSpec {
  service: Service;
  /** Name shown to people, and used in error messages ("Settings → Integrations → OpenAI"). */
  label: string;
  /** Deployment setting that overrides the upstream base URL (tests, on-premise gateways). */
  baseUrlEnv: string | null;
  /** Public API base, ending before the OpenAI-style path (`/models`, `/chat/completions`). */
  defaultBaseUrl: string | null;
  /** A key must start with this (a typo check, not a security control). */
  keyPrefix: string | null;
  /** Where a person creates a key. */
  keyPageUrl: string | null;
  /** The cheapest authenticated request, used to validate a key. */
  validation: { method: "GET"; path: string; keyHeader: KeyHeaderStyle };
  /** Speaks the OpenAI wire format at `defaultBaseUrl`, so the proxy can pass requests through. */
  openAICompatible: boolean;
}

export const PROVIDERS: Record<Service, ProviderSpec> = {
  openai: {
    service: "openai",
    label: "OpenAI",
    baseUrlEnv: "OPENAI_BASE_URL",
    defaultBaseUrl: "https://api.openai.com/v1",
    keyPrefix: "sk-",
    keyPageUrl: "https://platform.openai.com/api-keys",
    validation: { method: "GET", path: "/models", keyHeader: "bearer" },
    openAICompatible: true,
  },
  gemini: {
    service: "gemini",
    label: "Gemini",
    baseUrlEnv: "GEMINI_BASE_URL",
    defaultBaseUrl: "https://generativelanguage.googleapis.com/v1beta/openai",
    keyPrefix: "AIza",
    keyPageUrl: "https://aistudio.google.com/app/apikey",
    validation: { method: "GET", path: "/models", keyHeader: "bearer" },
    openAICompatible: true,
  },
  anthropic: {
    service: "anthropic",
    label: "Anthropic",
    baseUrlEnv: "ANTHROPIC_BASE_URL",
    defaultBaseUrl: "https://api.anthropic.com/v1",
    keyPrefix: "sk-ant-",
    keyPageUrl: "https://console.anthropic.com/settings/keys",
    validation: { method: "GET", path: "/models", keyHeader: "x-api-key" },
    openAICompatible: true,
  },
  manus: {
    service: "manus",
    label: "Manus",
    baseUrlEnv: "MANUS_BASE_URL",
    defaultBaseUrl: "https://api.manus.ai",
    keyPrefix: null,
    keyPageUrl: "https://manus.im/app",
    validation: { method: "GET", path: "/v1/tasks?limit=1", keyHeader: "manus" },
    openAICompatible: false,
  },
  perplexity: {
    service: "perplexity",
    label: "Perplexity",
    baseUrlEnv: "PERPLEXITY_BASE_URL",
    defaultBaseUrl: "https://api.perplexity.ai",
    keyPrefix: "pplx-",
    keyPageUrl: "https://www.perplexity.ai/settings/api",
    validation: { method: "GET", path: "/models", keyHeader: "bearer" },
    openAICompatible: true,
  },
  openrouter: {
    service: "openrouter",
    label: "OpenRouter",
    baseUrlEnv: "OPENROUTER_BASE_URL",
    defaultBaseUrl: "https://openrouter.ai/api/v1",
    keyPrefix: "sk-or-",
    keyPageUrl: "https://openrouter.ai/settings/keys",
    validation: { method: "GET", path: "/key", keyHeader: "bearer" },
    openAICompatible: true,
  },
  custom: {
    service: "custom",
    label: "Custom endpoint",
    baseUrlEnv: null,
    defaultBaseUrl: null,
    keyPrefix: null,
    keyPageUrl: null,
    validation: { method: "GET", path: "/models", keyHeader: "bearer" },
    openAICompatible: true,
  },
};

export const API_KEY_MAX_LENGTH = 512;
export const API_KEY_MIN_LENGTH = 8;

/** Whitespace and control characters never belong in a key; they usually mean a bad paste. */
const NO_WHITESPACE_OR_CONTROL = /^[^\s\p{Cc}\p{Cf}]+$/u;

/** Returns why `value` cannot be a key for `service`, or null when the format is plausible. */
export function apiKeyFormatProblem(service: Service, value: string): string | null {
  const spec = PROVIDERS[service];
  if (value.length < API_KEY_MIN_LENGTH) return `Key is too short.`;
  if (value.length > API_KEY_MAX_LENGTH) {
    return `Key is longer than ${API_KEY_MAX_LENGTH} characters.`;
  }
  if (!NO_WHITESPACE_OR_CONTROL.test(value)) {
    return "Key contains spaces or control characters.";
  }
  if (spec.keyPrefix && !value.startsWith(spec.keyPrefix)) {
    return `${spec.label} keys start with "${spec.keyPrefix}".`;
  }
  return null;
}

/** True when `value` is one of the supported services (exact match, no case folding). */
export function isService(value: unknown): value is Service {
  return typeof value === "string" && (SERVICES as readonly string[]).includes(value);
}
