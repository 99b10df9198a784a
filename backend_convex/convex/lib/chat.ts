/** Reads and rules both sides of chat share. */
import type { Doc } from "../_generated/dataModel";
import type { MutationCtx, QueryCtx } from "../_generated/server";
import { fail, SESSION_ENDED } from "./errors";
import { newId } from "./ids";
import { MAX_MESSAGES } from "./limits";
import { chatMessageRecord } from "./records";
import type { ChatMessageRecord } from "./validators";

/** The session's messages, oldest first (the newest MAX_MESSAGES of them). */
export async function messagesOf(ctx: QueryCtx, sessionId: string): Promise<ChatMessageRecord[]> {
  const newest = await ctx.db
    .query("chatMessages")
    .withIndex("by_chatSessionId", (q) => q.eq("chatSessionId", sessionId))
    .order("desc")
    .take(MAX_MESSAGES);
  return newest.reverse().map(chatMessageRecord);
}

/** The reply of the session being streamed, if any (there is at most one). */
export async function streamingReply(ctx: QueryCtx, sessionId: string): Promise<Doc<"chatMessages"> | null> {
  return await ctx.db
    .query("chatMessages")
    .withIndex("by_chatSessionId_and_status", (q) => q.eq("chatSessionId", sessionId).eq("status", "streaming"))
    .first();
}

/** `session` unless it has ended. */
export function ensureOpen(session: Doc<"chatSessions">): Doc<"chatSessions"> {
  if (session.status === "terminated") fail("Conflict", SESSION_ENDED);
  return session;
}

/** `message` if it is a reply still being streamed. */
export function ensureStreaming(message: Doc<"chatMessages">): Doc<"chatMessages"> {
  if (message.role !== "assistant") fail("Conflict", "That message is not a reply.");
  if (message.status !== "streaming") fail("Conflict", "This reply has already ended.");
  return message;
}

/** Store a chunk under the session's next sequence number (gap-free: one transaction). */
export async function insertChunk(
  ctx: MutationCtx,
  session: Doc<"chatSessions">,
  messageId: string,
  text: string,
  part?: { partId: string; offset: number },
): Promise<Doc<"chatChunks">> {
  const now = Date.now();
  const sequence = session.lastSequence + 1;
  await ctx.db.patch(session._id, { lastSequence: sequence, lastActivity: now });
  session.lastSequence = sequence;
  const id = await ctx.db.insert("chatChunks", {
    chunkId: await newId(ctx, "chunk"),
    messageId,
    chatSessionId: session.chatSessionId,
    chunk: text,
    sequence,
    timestamp: now,
    ...part,
  });
  return (await ctx.db.get(id))!;
}
