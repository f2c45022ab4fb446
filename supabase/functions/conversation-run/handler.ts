/**
 * conversation-run: POST `{conversation_id?, messages, model, provider?}` and read the reply as
 * Server-Sent Events: `run.started`, `delta`..., `usage`, then `done`, `cancelled` or `error`.
 * Auth and body problems are plain JSON errors before the stream starts; everything after
 * `run.started` (including a missing key) is an event. The conversation, the user's message and
 * the assistant's reply (partial on cancel or error) are stored as the user.
 */
import { z } from "zod";
import type { AuthenticatedUser } from "../_shared/http/auth.ts";
import {
  abandonRun,
  type ChatMessage,
  finishRun,
  isCancelRequested,
  openRun,
  type RunStatus,
  type Usage,
} from "../_shared/conversations/store.ts";
import { streamChatCompletion } from "../_shared/conversations/chatStream.ts";
import { providerErrorCode } from "../_shared/contract/errorCodes.ts";
import { AppError } from "../_shared/core/errors.ts";
import { defineHandler, type Handler, readUserJson, toAppError } from "../_shared/http/pipeline.ts";
import { type KeySource, resolveProviderKey } from "../_shared/sharing/keyResolution.ts";
import {
  chargeSharedKey,
  tokenUsageOf,
  usageRecorderFor,
} from "../_shared/upstream/usageRecorder.ts";
import { describeError, log } from "../_shared/core/log.ts";
import type { Service } from "../_shared/contract/providers.ts";
import { type Runtime, runtimeFromEnv, type RuntimeSource } from "../_shared/core/runtime.ts";
import { type SseWriter, streamSse } from "../_shared/http/sse.ts";
import { OPENAI_COMPATIBLE_SERVICES } from "../_shared/upstream/providerCalls.ts";

const requestSchema = z.strictObject({
  conversation_id: z.uuid().optional(),
  messages: z.array(
    z.strictObject({ role: z.enum(["system", "user", "assistant"]), content: z.string().min(1) }),
  ).min(1).max(1_000),
  model: z.string().trim().min(1).max(200),
  provider: z.enum(OPENAI_COMPATIBLE_SERVICES).default("openai"),
});

type RunRequest = z.infer<typeof requestSchema>;

/** Why the run loop aborted the upstream request. */
const CANCEL_REQUESTED = new DOMException("run cancelled", "AbortError");
const STALLED = new DOMException("upstream stalled", "TimeoutError");
const TIME_LIMIT = new DOMException("stream time limit reached", "TimeoutError");

/** Polls the run's cancel flag until stopped; a cancel takes effect within one interval plus one query. */
function watchCancelFlag(rt: Runtime, runId: string, onCancel: () => void): () => void {
  let active = true;
  let timer: ReturnType<typeof setTimeout>;
  const tick = async () => {
    try {
      if (active && await isCancelRequested(rt.db, runId)) {
        onCancel();
        return;
      }
    } catch (error) {
      log.warn("cancel poll failed", { runId, error: describeError(error) });
    }
    if (active) timer = setTimeout(tick, rt.config.runCancelPollMs);
  };
  timer = setTimeout(tick, rt.config.runCancelPollMs);
  return () => {
    active = false;
    clearTimeout(timer);
  };
}

async function runConversation(
  rt: Runtime,
  user: AuthenticatedUser,
  body: RunRequest,
  run: { runId: string; conversationId: string },
  writer: SseWriter,
): Promise<void> {
  writer.send({ type: "run.started", run_id: run.runId, conversation_id: run.conversationId });
  const service: Service = body.provider;
  const stop = new AbortController();
  const clientGone = () => stop.abort(writer.signal.reason);
  writer.signal.addEventListener("abort", clientGone, { once: true });
  const stopWatching = watchCancelFlag(rt, run.runId, () => stop.abort(CANCEL_REQUESTED));
  const timeLimit = setTimeout(() => stop.abort(TIME_LIMIT), rt.config.streamTimeLimitMs);
  const stopping = () => stop.abort(new AppError("SERVER_SHUTTING_DOWN"));
  rt.stopping.addEventListener("abort", stopping, { once: true });

  let output = "";
  let usage: Usage | null = null;
  let status: Exclude<RunStatus, "running">;
  let failure: AppError | null = null;
  let keySource: KeySource | null = null;
  let sharedKeyId: string | undefined;
  try {
    const key = await resolveProviderKey(rt, user, service);
    keySource = key.source;
    sharedKeyId = key.sharedKeyId;
    await streamChatCompletion({
      config: rt.config,
      fetch: rt.fetch,
      service,
      stored: key.credentials,
      model: body.model,
      messages: body.messages as ChatMessage[],
      signal: stop.signal,
      idleTimeoutMs: rt.config.upstreamTimeoutMs,
      onStall: () => stop.abort(STALLED),
      onDelta: (content) => {
        output += content;
        writer.send({ type: "delta", content });
      },
      onUsage: (reported) => {
        usage = reported;
      },
    });
    status = "done";
  } catch (error) {
    const reason = stop.signal.aborted ? stop.signal.reason : null;
    if (reason === STALLED) {
      status = "error";
      failure = new AppError(providerErrorCode(service, "TIMEOUT"), { cause: error });
    } else if (reason instanceof AppError) {
      // The server is stopping: the partial reply is kept, and the client told why.
      status = "error";
      failure = reason;
    } else if (reason === TIME_LIMIT) {
      // The partial reply is kept, as on a cancel; the client learns why it ended.
      status = "error";
      failure = new AppError("STREAM_TIME_LIMIT", { cause: error });
    } else if (stop.signal.aborted) {
      // Cancelled through conversation-cancel, or the client went away.
      status = "cancelled";
    } else {
      status = "error";
      failure = toAppError(error, "conversation-run");
    }
  } finally {
    stopWatching();
    clearTimeout(timeLimit);
    rt.stopping.removeEventListener("abort", stopping);
    writer.signal.removeEventListener("abort", clientGone);
  }

  try {
    await finishRun(rt.db, user, run, { status, output, errorCode: failure?.code ?? null, usage });
  } catch (error) {
    log.error("could not record the run's outcome", {
      runId: run.runId,
      error: describeError(error),
    });
    await abandonRun(rt.db, user, run.runId).catch((cause) =>
      log.error("could not end the run", { runId: run.runId, error: describeError(cause) })
    );
  }

  if (keySource) {
    // Same per-day ledger as the proxy, written off the request path.
    const reported = tokenUsageOf(usage as Usage | null);
    usageRecorderFor(rt.db).record({
      userId: user.id,
      service,
      source: keySource,
      usage: reported,
    });
    chargeSharedKey(rt.db, { sharedKeyId }, user.id, reported);
  }
  if (usage) writer.send({ type: "usage", usage });
  if (status === "done") {
    writer.send({
      type: "done",
      run_id: run.runId,
      conversation_id: run.conversationId,
      key_source: keySource,
    });
  } else if (status === "cancelled") writer.send({ type: "cancelled", run_id: run.runId });
  else if (failure) {
    writer.sendError(failure);
  }
}

export function createHandler(runtime: RuntimeSource): Handler {
  return defineHandler("conversation-run", runtime, async (request, rt) => {
    const { user, body } = await readUserJson(request, rt, requestSchema);
    const run = await openRun(rt.db, user, {
      conversationId: body.conversation_id,
      messages: body.messages as ChatMessage[],
      provider: body.provider,
      model: body.model,
    });
    return streamSse((writer) => runConversation(rt, user, body, run, writer), {
      heartbeatMs: rt.config.sseHeartbeatMs,
      context: "conversation-run",
    });
  });
}

export const handler: Handler = createHandler(runtimeFromEnv);
