/**
 * A shared key's four daily limits, as SharedKeysView's create form and its cards edit them:
 * upstream calls and provider-reported tokens, for all users together and for each user, per UTC
 * day. Empty is no limit; the bounds are llm-config's own.
 */
import type { SharedKey, SharedKeyLimits } from "../lib/sharingApi.ts";
import { parseWholeNumber } from "../hooks/useRemote.ts";

const REQUEST_LIMIT = { min: 1, max: 1_000_000, optional: true };
const TOKEN_LIMIT = { min: 1, max: 1_000_000_000, optional: true };

/** The key of each limit field's problem in a form's problems. */
export type LimitProblem = "daily" | "perUser" | "dailyTokens" | "perUserTokens";
type LimitProblems = Partial<Record<LimitProblem, string>>;

/** The four limit fields, in the order they are shown and checked; empty is no limit. */
const LIMIT_FIELDS: {
  name: keyof SharedKeyLimits;
  problem: LimitProblem;
  label: string;
  words: string;
  range: typeof REQUEST_LIMIT;
}[] = [
  { name: "daily_limit", problem: "daily", label: "Daily limit (all users)", words: "the daily limit", range: REQUEST_LIMIT },
  {
    name: "per_user_daily_limit",
    problem: "perUser",
    label: "Daily limit per user",
    words: "the per-user daily limit",
    range: REQUEST_LIMIT,
  },
  {
    name: "daily_token_limit",
    problem: "dailyTokens",
    label: "Daily token limit (all users)",
    words: "the daily token limit",
    range: TOKEN_LIMIT,
  },
  {
    name: "per_user_daily_token_limit",
    problem: "perUserTokens",
    label: "Daily token limit per user",
    words: "the per-user daily token limit",
    range: TOKEN_LIMIT,
  },
];

/**
 * Reads every limit field of a form: each one as a number, or null when empty (no limit; on a
 * card, sending null clears it), and the problem of each field that is neither.
 */
export function readLimits(data: FormData): { limits: Required<SharedKeyLimits>; problems: LimitProblems } {
  const limits = {} as Required<SharedKeyLimits>;
  const problems: LimitProblems = {};
  for (const field of LIMIT_FIELDS) {
    const parsed = parseWholeNumber(String(data.get(field.name) ?? ""), field.words, field.range);
    limits[field.name] = parsed.value;
    problems[field.problem] = parsed.problem ?? undefined;
  }
  return { limits, problems };
}

/** Focuses the first field of `form` whose problem is set (fields carry `data-field`). */
export function focusFirstProblem(form: HTMLFormElement | null, problems: LimitProblems): boolean {
  const first = Object.entries(problems).find(([, problem]) => problem);
  if (!first) return false;
  form?.querySelector<HTMLElement>(`[data-field="${first[0]}"]`)?.focus();
  return true;
}

/**
 * The request and token limit inputs, labelled, each tied to its error by aria-describedby.
 * `values` fills them from a shared key (a card); without it they start empty (the create form).
 */
export function LimitFields(props: {
  id: string;
  problems: LimitProblems;
  values?: SharedKey;
  onInput(problem: LimitProblem): void;
}) {
  const input = (field: (typeof LIMIT_FIELDS)[number]) => {
    const inputId = `${props.id}-${field.problem}`;
    const problem = props.problems[field.problem];
    return (
      <div className="field" key={field.name}>
        <label htmlFor={inputId}>{field.label}</label>
        <input
          id={inputId}
          name={field.name}
          type="number"
          inputMode="numeric"
          min={field.range.min}
          max={field.range.max}
          defaultValue={props.values ? props.values[field.name] ?? "" : undefined}
          data-field={field.problem}
          aria-invalid={problem ? true : undefined}
          aria-describedby={problem ? `${inputId}-error` : undefined}
          onInput={() => props.onInput(field.problem)}
        />
        {problem && <p id={`${inputId}-error`} className="field-error" role="alert">{problem}</p>}
      </div>
    );
  };
  return (
    <>
      <div className="grid-2">{LIMIT_FIELDS.slice(0, 2).map(input)}</div>
      <div className="grid-2">{LIMIT_FIELDS.slice(2).map(input)}</div>
      <p className="help">
        Requests count every call; tokens are what the provider reports (prompt plus completion). Days are UTC. Leave a
        limit empty for no limit.
      </p>
    </>
  );
}

/** A whole number as people read it: 2,000,000. */
export const formatCount = (n: number) => n.toLocaleString("en");

/** A shared key's request limits in words, for its card. */
export function limitWords(key: SharedKey): string {
  const total = key.daily_limit === null ? "no daily limit" : `${formatCount(key.daily_limit)} a day in all`;
  const each = key.per_user_daily_limit === null ? "no per-user limit" : `${formatCount(key.per_user_daily_limit)} a day per user`;
  return `${total}, ${each}`;
}

/** A shared key's token limits in words, for its card. */
export function tokenLimitWords(key: SharedKey): string {
  const total = key.daily_token_limit === null ? "no daily token limit" : `${formatCount(key.daily_token_limit)} tokens a day in all`;
  const each = key.per_user_daily_token_limit === null
    ? "no per-user token limit"
    : `${formatCount(key.per_user_daily_token_limit)} tokens a day per user`;
  return `${total}, ${each}`;
}
