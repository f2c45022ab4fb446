/**
 * Small shared plumbing for the sharing views: load something once (with a reload), and run
 * actions with a per-action busy flag, a toast for successes and the failure kept for the card.
 */
import { useCallback, useEffect, useRef, useState } from "react";
import { useToast } from "../components/Toasts.tsx";
import { CredentialsError } from "../lib/credentialsApi.ts";
import { friendlyMessage } from "../lib/errorMessages.ts";

/** The message a person reads for any failure. */
export function messageOf(error: unknown): string {
  return error instanceof CredentialsError ? error.message : friendlyMessage("INTERNAL_ERROR");
}

export interface Remote<T> {
  data: T | null;
  setData(update: (current: T | null) => T | null): void;
  error: string | null;
  loading: boolean;
  reload(): Promise<void>;
}

/** Loads `load()` on mount and whenever `reload` is called; failures land in `error`. */
export function useRemote<T>(load: () => Promise<T>): Remote<T> {
  const [data, setDataState] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const mounted = useRef(true);
  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);

  const reload = useCallback(async () => {
    setLoading(true);
    try {
      const fresh = await load();
      if (mounted.current) {
        setDataState(fresh);
        setError(null);
      }
    } catch (failure) {
      if (mounted.current) setError(messageOf(failure));
    } finally {
      if (mounted.current) setLoading(false);
    }
  }, [load]);

  useEffect(() => {
    reload();
  }, [reload]);

  const setData = useCallback((update: (current: T | null) => T | null) => setDataState(update), []);
  return { data, setData, error, loading, reload };
}

/**
 * `run(name, action)`: marks `name` busy, toasts `success`, or keeps the failure in `error` (shown
 * in the card with `CardError`) until the next action; resolves with the result or undefined.
 */
export function useActions() {
  const notify = useToast();
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const run = useCallback(async <T,>(name: string, action: () => Promise<T>, success?: string | ((result: T) => string)) => {
    setBusy(name);
    setError(null);
    try {
      const result = await action();
      if (success) notify(typeof success === "function" ? success(result) : success);
      return result;
    } catch (failure) {
      setError(messageOf(failure));
      return undefined;
    } finally {
      setBusy(null);
    }
  }, [notify]);
  return { busy, run, error, setError };
}

/** Reads a whole-number field: the number, null when empty and allowed, or the problem to show. */
export function parseWholeNumber(
  raw: string,
  label: string,
  range: { min: number; max: number; optional?: boolean },
): { value: number | null; problem: string | null } {
  const text = raw.trim();
  if (text === "") {
    return range.optional ? { value: null, problem: null } : { value: null, problem: `Enter ${label}.` };
  }
  const value = Number(text);
  if (!Number.isInteger(value) || value < range.min || value > range.max) {
    return { value: null, problem: `${label[0].toUpperCase()}${label.slice(1)} must be a whole number from ${range.min} to ${range.max.toLocaleString("en")}.` };
  }
  return { value, problem: null };
}

/** Formats an ISO time for people. */
export function formatTime(iso: string): string {
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}
