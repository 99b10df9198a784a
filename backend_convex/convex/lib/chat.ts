/** Reads and rules both sides of chat share. */
import type { NamedTableInfo, Query } from "convex/server";
import type { DataModel, Doc } from "../_generated/dataModel";
import type { MutationCtx, QueryCtx } from "../_generated/server";
import { machineMessage, machineRequest, type RequestDocs, type RequestTable } from "./access";
import { fail, SESSION_ENDED } from "./errors";
import { newId } from "./ids";
import { cutPage, pageLimit, pageStart, textSize } from "./paging";
import { chatMessageRecord } from "./records";
import { segmentBytes } from "./text";
import type { ChatMessageRecord } from "./validators";

/**
 * A page of the session's messages, newest first, older than the message
 * `afterMessageId` (the last one the previous page returned); `hasMore` if
 * older ones are left.
 */
export async function messagesPage(
  ctx: QueryCtx,
  sessionId: string,
  afterMessageId: string | undefined,
  limit: number,
): Promise<{ messages: ChatMessageRecord[]; hasMore: boolean }> {
  const before = (await pageStart(ctx, "chatMessages", afterMessageId, (last) => last.chatSessionId === sessionId))?._creationTime;
  const newestFirst = ctx.db
    .query("chatMessages")
    .withIndex("by_chatSessionId", (q) =>
      before === undefined
        ? q.eq("chatSessionId", sessionId)
        : q.eq("chatSessionId", sessionId).lt("_creationTime", before),
    )
    .order("desc");
  const { items, hasMore } = await cutPage(newestFirst, limit, (m) => textSize(m.content, m.error) + segmentBytes(m.contentSegments));
  return { messages: items.map(chatMessageRecord), hasMore };
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

export const MESSAGE_NOT_QUEUED = "This message is no longer queued: the agent has already received it.";

/** `message` if its sender may still edit or cancel it: not yet claimed. */
export function ensureQueued(message: Doc<"chatMessages">): Doc<"chatMessages"> {
  if (message.role !== "user" || message.status !== "pending") fail("Conflict", MESSAGE_NOT_QUEUED);
  return message;
}

/** `message` if it is a reply still being streamed. */
export function ensureStreaming(message: Doc<"chatMessages">): Doc<"chatMessages"> {
  if (message.role !== "assistant") fail("Conflict", "That message is not a reply.");
  if (message.status !== "streaming") fail("Conflict", "This reply has already ended.");
  return message;
}

const NO_ANSWER = {
  permissionRequests: "This permission request has no answer to pass on.",
  questionRequests: "This question has no answer to pass on.",
} as const;

/** The calling machine passed the answer of its request `id` on to the agent: the request is resolved. */
export async function resolveRequest<T extends RequestTable>(
  ctx: MutationCtx,
  table: T,
  machineId: string,
  id: string,
): Promise<RequestDocs[T]> {
  const { request } = await machineRequest(ctx, table, machineId, id);
  if (request.status !== "answered") fail("Conflict", NO_ANSWER[table]);
  await ctx.db.patch(request._id, { status: "resolved" });
  return (await ctx.db.get(request._id)) as RequestDocs[T];
}

/**
 * The session's requests of `table` waiting for an answer (or all of them), oldest first,
 * after the one created at `after` (0: from the first).
 */
export function sessionRequests<T extends RequestTable>(
  ctx: QueryCtx,
  table: T,
  chatSessionId: string,
  all: boolean,
  after: number,
): Query<NamedTableInfo<DataModel, T>> {
  // Generic over the table, TypeScript cannot name the indexes both request tables have (schema.ts).
  const requests = ctx.db.query(table as RequestTable as "questionRequests");
  const found = all
    ? requests.withIndex("by_chatSessionId", (q) => q.eq("chatSessionId", chatSessionId).gt("_creationTime", after))
    : requests.withIndex("by_chatSessionId_and_status", (q) =>
        q.eq("chatSessionId", chatSessionId).eq("status", "pending").gt("_creationTime", after),
      );
  return found as unknown as Query<NamedTableInfo<DataModel, T>>;
}

/**
 * A page of the session's requests of `table` waiting for an answer (or of all of them),
 * oldest first, after the request `afterId` the last page ended with, cut by `size` too.
 */
export async function requestsPage<T extends RequestTable>(
  ctx: QueryCtx,
  table: T,
  chatSessionId: string,
  page: { all?: boolean; afterId?: string; limit: number },
  size: (request: Doc<T>) => number,
) {
  const last = await pageStart(ctx, table, page.afterId, (request) => request.chatSessionId === chatSessionId);
  const oldestFirst = sessionRequests(ctx, table, chatSessionId, page.all ?? false, last?._creationTime ?? 0);
  return await cutPage(oldestFirst, pageLimit(page.limit), size);
}

/**
 * The fields a permission request or question the agent makes during reply `messageId`
 * of the calling machine starts with (pending); the reply must be streaming.
 */
export async function pendingRequest(ctx: QueryCtx, machineId: string, messageId: string) {
  const { message, session } = await machineMessage(ctx, machineId, messageId);
  ensureStreaming(message);
  return { chatSessionId: session.chatSessionId, messageId, machineId, status: "pending" as const, createdAt: Date.now() };
}

/**
 * The session's last sequence. Streaming never writes the session document (every
 * reader of the session would re-run per chunk): its chunks and parts carry their
 * sequences, and `lastSequence` holds the last one as of the last reply's end (its
 * chunks are deleted later). Convex runs a mutation serializably, so two writers
 * reading the same last sequence cannot both commit.
 */
export async function lastSequence(ctx: QueryCtx, session: Doc<"chatSessions">): Promise<number> {
  const chatSessionId = session.chatSessionId;
  const chunk = await ctx.db
    .query("chatChunks")
    .withIndex("by_chatSessionId_and_sequence", (q) => q.eq("chatSessionId", chatSessionId))
    .order("desc")
    .first();
  let last = Math.max(session.lastSequence, chunk?.sequence ?? 0);
  for (const isText of [true, false]) {
    const part = await ctx.db
      .query("messageParts")
      .withIndex("by_chatSessionId_and_isText_and_sequence", (q) =>
        q.eq("chatSessionId", chatSessionId).eq("isText", isText),
      )
      .order("desc")
      .first();
    last = Math.max(last, part?.sequence ?? 0);
  }
  return last;
}

/** The session's chunks streamed after `afterSequence`, in order. */
export function sessionChunksAfter(ctx: QueryCtx, chatSessionId: string, afterSequence: number) {
  return ctx.db
    .query("chatChunks")
    .withIndex("by_chatSessionId_and_sequence", (q) =>
      q.eq("chatSessionId", chatSessionId).gt("sequence", afterSequence),
    );
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
  const sequence = (await lastSequence(ctx, session)) + 1;
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
