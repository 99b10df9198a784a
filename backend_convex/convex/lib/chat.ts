/** Reads and rules both sides of chat share. */
import type { Doc } from "../_generated/dataModel";
import type { MutationCtx, QueryCtx } from "../_generated/server";
import { messageById } from "./access";
import { fail, SESSION_ENDED } from "./errors";
import { newId } from "./ids";
import { MAX_MESSAGES, MAX_REPLY_CHUNKS, MAX_WORK_PERMISSIONS, MAX_WORK_SESSIONS } from "./limits";
import { chatMessageRecord } from "./records";
import type { ChatMessageRecord, MessageStatus } from "./validators";

/** Why a reply of a machine that went away ended (its text so far is kept). */
export const GONE_REASON = "The machine went offline while this reply was being written.";

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

/** End a streaming reply with `status`; with no `content`, it keeps the text streamed so far. */
export async function endMessage(
  ctx: MutationCtx,
  message: Doc<"chatMessages">,
  session: Doc<"chatSessions">,
  status: MessageStatus,
  content: string | null,
  error: string | undefined,
): Promise<ChatMessageRecord> {
  ensureStreaming(message);
  if (content === null) {
    const parts = await ctx.db
      .query("chatChunks")
      .withIndex("by_messageId_and_sequence", (q) => q.eq("messageId", message.messageId))
      .take(MAX_REPLY_CHUNKS);
    content = parts.map((part) => part.chunk).join("");
  }
  const now = Date.now();
  await ctx.db.patch(message._id, { status, content, error });
  const question = message.replyTo === undefined ? null : await messageById(ctx, message.replyTo);
  if (question !== null) await ctx.db.patch(question._id, { status: "completed" });
  // A request the reply no longer waits for can never be answered.
  for (const waiting of ["pending", "answered"] as const) {
    const requests = await ctx.db
      .query("permissionRequests")
      .withIndex("by_messageId_and_status", (q) => q.eq("messageId", message.messageId).eq("status", waiting))
      .take(MAX_WORK_PERMISSIONS);
    for (const request of requests) await ctx.db.patch(request._id, { status: "expired" });
  }
  await ctx.db.patch(session._id, { lastActivity: now });
  return chatMessageRecord((await ctx.db.get(message._id))!);
}

/** End the machine's streaming replies as interrupted, keeping the text they hold. */
export async function endRepliesOfGoneMachine(ctx: MutationCtx, machineId: string): Promise<void> {
  const streaming = await ctx.db
    .query("chatMessages")
    .withIndex("by_machineId_and_status", (q) => q.eq("machineId", machineId).eq("status", "streaming"))
    .take(MAX_WORK_SESSIONS); // at most one streaming reply per session
  for (const message of streaming) {
    const session = await ctx.db
      .query("chatSessions")
      .withIndex("by_chatSessionId", (q) => q.eq("chatSessionId", message.chatSessionId))
      .unique();
    if (session !== null && message.role === "assistant") {
      await endMessage(ctx, message, session, "interrupted", null, GONE_REASON);
    }
  }
}
