/**
 * Conversations, messages and runs in Postgres. Every statement runs as the signed-in user
 * (`asUser`), so row level security decides what exists; the one exception is the cancel-flag
 * poll, which reads a single boolean by a run id the server itself created.
 */
import { asUser, type Database, type DbUser } from "../core/db.ts";
import { AppError } from "../core/errors.ts";

export type ChatRole = "system" | "user" | "assistant";

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

export type RunStatus = "running" | "done" | "cancelled" | "error";

export interface Usage {
  prompt_tokens: number | null;
  completion_tokens: number | null;
  total_tokens: number | null;
}

const TITLE_LENGTH = 80;

function titleFrom(messages: ChatMessage[]): string {
  const first = messages.find((m) => m.role === "user") ?? messages[0];
  return first.content.replace(/\s+/g, " ").trim().slice(0, TITLE_LENGTH);
}

/**
 * Starts a run: creates the conversation (storing every given message) or, for an existing one,
 * stores only the last message (the new turn). Throws NOT_FOUND when `conversationId` is not
 * one of the user's conversations.
 */
export async function openRun(
  db: Database,
  user: DbUser,
  input: { conversationId?: string; messages: ChatMessage[]; provider: string; model: string },
): Promise<{ runId: string; conversationId: string }> {
  return await asUser(db, user, async (tx) => {
    let conversationId = input.conversationId;
    let stored: ChatMessage[];
    if (conversationId) {
      // Touches the conversation (its updated_at trigger stamps the time) and proves it is theirs.
      const [found] = await tx.query<{ id: string }>(
        "update public.conversations set updated_at = default where id = $1::uuid returning id",
        [conversationId],
      );
      if (!found) {
        throw new AppError("NOT_FOUND", {
          message: "No conversation with that id belongs to you.",
        });
      }
      stored = input.messages.slice(-1);
    } else {
      const [created] = await tx.query<{ id: string }>(
        "insert into public.conversations (user_id, title) values ($1::uuid, $2) returning id",
        [user.id, titleFrom(input.messages)],
      );
      conversationId = created.id;
      stored = input.messages;
    }
    const [run] = await tx.query<{ id: string }>(
      `insert into public.conversation_runs (user_id, conversation_id, provider, model)
       values ($1::uuid, $2::uuid, $3, $4) returning id`,
      [user.id, conversationId, input.provider, input.model],
    );
    for (const message of stored) {
      await tx.query(
        `insert into public.conversation_messages (user_id, conversation_id, run_id, role, content)
         values ($1::uuid, $2::uuid, $3::uuid, $4, $5)`,
        [user.id, conversationId, run.id, message.role, message.content],
      );
    }
    return { runId: run.id, conversationId };
  });
}

/** Text from a provider as Postgres text can hold it: a NUL becomes U+FFFD. */
function storableText(text: string): string {
  return text.includes("\0") ? text.replaceAll("\0", "\uFFFD") : text;
}

/**
 * Ends a run whose outcome could not be recorded, so it never stays `running`: status `error`,
 * nothing else touched.
 */
export async function abandonRun(db: Database, user: DbUser, runId: string): Promise<void> {
  await asUser(db, user, (tx) =>
    tx.query(
      `update public.conversation_runs
          set status = 'error', error_code = 'INTERNAL_ERROR', finished_at = now()
        where id = $1::uuid and status = 'running'`,
      [runId],
    ));
}

/**
 * Records how a run ended. The assistant's output is stored as a message whenever there is any,
 * so a cancelled or failed run keeps its partial reply.
 */
export async function finishRun(
  db: Database,
  user: DbUser,
  run: { runId: string; conversationId: string },
  outcome: {
    status: Exclude<RunStatus, "running">;
    output: string;
    errorCode: string | null;
    usage: Usage | null;
  },
): Promise<void> {
  await asUser(db, user, async (tx) => {
    await tx.query(
      `update public.conversation_runs
          set status = $2, output = $3, error_code = $4, prompt_tokens = $5, completion_tokens = $6,
              total_tokens = $7, finished_at = now()
        where id = $1::uuid`,
      [
        run.runId,
        outcome.status,
        storableText(outcome.output),
        outcome.errorCode,
        outcome.usage?.prompt_tokens ?? null,
        outcome.usage?.completion_tokens ?? null,
        outcome.usage?.total_tokens ?? null,
      ],
    );
    if (outcome.output) {
      await tx.query(
        `insert into public.conversation_messages (user_id, conversation_id, run_id, role, content)
         values ($1::uuid, $2::uuid, $3::uuid, 'assistant', $4)`,
        [user.id, run.conversationId, run.runId, storableText(outcome.output)],
      );
    }
    await tx.query("update public.conversations set updated_at = default where id = $1::uuid", [
      run.conversationId,
    ]);
  });
}

/**
 * The cancel poll: one indexed primary-key read per interval. It runs as the server because the
 * server created this run id for the verified user moments ago; no user input reaches it.
 */
export async function isCancelRequested(db: Database, runId: string): Promise<boolean> {
  const [row] = await db.query<{ cancel_requested: boolean }>(
    "select cancel_requested from public.conversation_runs where id = $1::uuid",
    [runId],
  );
  return row?.cancel_requested === true;
}

/**
 * Sets a run's cancel flag as its owner. Throws RUN_NOT_FOUND for an unknown run and for
 * someone else's (RLS hides it, so the two look the same).
 */
export async function requestCancel(db: Database, user: DbUser, runId: string): Promise<RunStatus> {
  const [row] = await asUser(db, user, (tx) =>
    tx.query<{ status: RunStatus }>(
      `update public.conversation_runs set cancel_requested = true
        where id = $1::uuid returning status`,
      [runId],
    ));
  if (!row) throw new AppError("RUN_NOT_FOUND");
  return row.status;
}

export interface ConversationSummary {
  id: string;
  title: string;
  created_at: string;
  updated_at: string;
  message_count: number;
}

const LIST_LIMIT = 200;

/** The user's conversations, most recently active first. */
export async function listConversations(
  db: Database,
  user: DbUser,
): Promise<ConversationSummary[]> {
  return await asUser(db, user, (tx) =>
    tx.query<ConversationSummary>(
      `select c.id, c.title, c.created_at, c.updated_at,
              (select count(*)::int from public.conversation_messages m where m.conversation_id = c.id)
                as message_count
         from public.conversations c
        order by c.updated_at desc
        limit ${LIST_LIMIT}`,
      [],
    ));
}

/** One conversation with its messages and runs; NOT_FOUND unless it is the user's. */
export async function getConversation(db: Database, user: DbUser, conversationId: string) {
  return await asUser(db, user, async (tx) => {
    const [conversation] = await tx.query(
      "select id, title, created_at, updated_at from public.conversations where id = $1::uuid",
      [conversationId],
    );
    if (!conversation) {
      throw new AppError("NOT_FOUND", { message: "No conversation with that id belongs to you." });
    }
    const messages = await tx.query(
      `select id, role, content, run_id, created_at from public.conversation_messages
        where conversation_id = $1::uuid order by created_at, id`,
      [conversationId],
    );
    const runs = await tx.query(
      `select id, provider, model, status, error_code, prompt_tokens, completion_tokens, total_tokens,
              created_at, finished_at
         from public.conversation_runs where conversation_id = $1::uuid order by created_at`,
      [conversationId],
    );
    return { ...conversation, messages, runs };
  });
}

/** Deletes one of the user's conversations (messages and runs go with it); NOT_FOUND otherwise. */
export async function deleteConversation(
  db: Database,
  user: DbUser,
  conversationId: string,
): Promise<void> {
  const [row] = await asUser(
    db,
    user,
    (tx) =>
      tx.query("delete from public.conversations where id = $1::uuid returning id", [
        conversationId,
      ]),
  );
  if (!row) {
    throw new AppError("NOT_FOUND", { message: "No conversation with that id belongs to you." });
  }
}
