/**
 * Chat as the owner of a session sees it, through the web server: sessions,
 * messages, stopping a reply, answering permission requests, and reading the
 * chunks a reply streams in. Another user's session is "not found".
 */
import type { Doc } from "./_generated/dataModel";
import type { MutationCtx, QueryCtx } from "./_generated/server";
import type { IndexRangeBuilder } from "convex/server";
import { v } from "convex/values";
import { owner, ownerOfSession, serverMutation, serverQuery } from "./lib/functions";
import { liveSession, messageById, ownedRequest, ownedSession, ownedWorker, reachable, workerById } from "./lib/access";
import { ensureOpen, ensureQueued, messagesPage, requestsPage, sessionChunksAfter, streamingReply } from "./lib/chat";
import { fail, NO_MESSAGE } from "./lib/errors";
import { newId } from "./lib/ids";
import { CHUNK_PAGE } from "./lib/limits";
import { cutPage, mergedLists, pageLimit, pageStart, textSize } from "./lib/paging";
import { chatChunkRecord, chatMessageRecord, chatSessionRecord, patched, permissionRecord } from "./lib/records";
import { readSegments } from "./lib/text";
import { forgetTurn, trackTurn } from "./lib/turns";
import { checkAgent, checkModel, validateMessage, validateSessionUpdate } from "./lib/rules";
import { agentTurnOf, requestRedo, requestUndo } from "./lib/undo";
import {
  chatChunkRecord as chunkValidator,
  chatMessageRecord as messageValidator,
  chatSessionRecord as sessionValidator,
  permissionAnswer,
  permissionRecord as permissionValidator,
  type ChatSessionStatus,
} from "./lib/validators";


/** Open an `active` session on a worker with one of the worker's models (and agents). */
export const startSession = serverMutation({
  args: { ...owner, workerId: v.string(), model: v.string(), agent: v.optional(v.string()) },
  returns: sessionValidator,
  handler: async (ctx, { userId, workerId, model, agent }) => {
    const worker = await ownedWorker(ctx, userId, workerId);
    checkModel(worker.status, worker.models, model);
    checkAgent(worker.agents ?? [], agent);
    const now = Date.now();
    const id = await ctx.db.insert("chatSessions", {
      chatSessionId: await newId(ctx, "chat_session"),
      workerId,
      machineId: worker.machineId,
      userId,
      model,
      status: "active",
      createdAt: now,
      lastActivity: now,
      lastSequence: 0,
      agent,
    });
    return chatSessionRecord((await ctx.db.get(id))!);
  },
});

async function setStatus(
  ctx: MutationCtx,
  userId: string,
  sessionId: string,
  from: readonly ChatSessionStatus[],
  to: ChatSessionStatus,
) {
  const session = await ownedSession(ctx, userId, sessionId);
  if (from.includes(session.status)) {
    await ctx.db.patch(session._id, { status: to, lastActivity: Date.now() });
    const reply = to === "terminated" ? await streamingReply(ctx, sessionId) : null;
    if (reply !== null) await ctx.db.patch(reply._id, { abortRequested: true });
  }
  return chatSessionRecord((await ctx.db.get(session._id))!);
}

/** Terminate a session for good; a streaming reply is asked to stop. Ending twice is harmless. */
export const endSession = serverMutation({
  args: ownerOfSession,
  returns: sessionValidator,
  handler: async (ctx, { userId, chatSessionId }) => {
    return await setStatus(ctx, userId, chatSessionId, ["active", "idle"], "terminated");
  },
});

/** Reopen a terminated session as `idle`; an open one is returned unchanged. */
export const restoreSession = serverMutation({
  args: ownerOfSession,
  returns: sessionValidator,
  handler: async (ctx, { userId, chatSessionId }) => {
    return await setStatus(ctx, userId, chatSessionId, ["terminated"], "idle");
  },
});

/** Give one of the user's sessions a title (not blank, bounded, trimmed). */
export const renameSession = serverMutation({
  args: { ...ownerOfSession, title: v.string() },
  returns: sessionValidator,
  handler: async (ctx, { userId, chatSessionId, title }) => {
    const { title: trimmed } = validateSessionUpdate(undefined, undefined, title);
    const session = await ownedSession(ctx, userId, chatSessionId);
    return chatSessionRecord(await patched(ctx, session, { title: trimmed }));
  },
});

/** Undo a finished reply of the session and every later one (the machine reverts the agent). */
export const undoTurn = serverMutation({
  args: { ...ownerOfSession, messageId: v.string() },
  returns: sessionValidator,
  handler: async (ctx, { userId, chatSessionId, messageId }) => {
    const session = await ownedSession(ctx, userId, chatSessionId);
    const reply = await ctx.db
      .query("chatMessages")
      .withIndex("by_messageId", (q) => q.eq("messageId", messageId))
      .unique();
    const part = await ctx.db
      .query("messageParts")
      .withIndex("by_messageId_and_partId", (q) => q.eq("messageId", messageId).eq("partId", "turn-diff"))
      .unique();
    const streaming = await streamingReply(ctx, chatSessionId);
    return chatSessionRecord(await patched(ctx, session, requestUndo(session, reply, agentTurnOf(part), streaming, Date.now())));
  },
});

/** Redo what is undone in the session. */
export const redoTurns = serverMutation({
  args: ownerOfSession,
  returns: sessionValidator,
  handler: async (ctx, { userId, chatSessionId }) => {
    const session = await ownedSession(ctx, userId, chatSessionId);
    const streaming = await streamingReply(ctx, chatSessionId);
    const newest = await ctx.db
      .query("chatMessages")
      .withIndex("by_chatSessionId", (q) => q.eq("chatSessionId", chatSessionId))
      .order("desc")
      .first();
    return chatSessionRecord(await patched(ctx, session, requestRedo(session, streaming, newest?.timestamp)));
  },
});

/** One of the user's sessions. */
export const getSession = serverQuery({
  args: ownerOfSession,
  returns: sessionValidator,
  handler: async (ctx, { userId, chatSessionId }) => {
    return chatSessionRecord(await ownedSession(ctx, userId, chatSessionId));
  },
});

type SessionDoc = Doc<"chatSessions">;

/** Newest activity first; ties: the newest created first (the index's `_creationTime`). */
function newestActivityFirst(a: SessionDoc, b: SessionDoc): number {
  return b.lastActivity - a.lastActivity || b._creationTime - a._creationTime;
}

/**
 * A worker's sessions of one status, newest activity first, strictly after
 * `after` in that order (from the start without it), read lazily from the index.
 */
async function* sessionsAfter(
  ctx: QueryCtx,
  workerId: string,
  status: ChatSessionStatus,
  after: SessionDoc | undefined,
): AsyncGenerator<SessionDoc> {
  const ofStatus = (q: IndexRangeBuilder<SessionDoc, ["workerId", "status", "lastActivity", "_creationTime"]>) =>
    q.eq("workerId", workerId).eq("status", status);
  const sessions = ctx.db.query("chatSessions");
  if (after === undefined) {
    yield* sessions.withIndex("by_workerId_and_status_and_lastActivity", ofStatus).order("desc");
    return;
  }
  // Ties on lastActivity first (older-created ones), then every older activity.
  yield* sessions
    .withIndex("by_workerId_and_status_and_lastActivity", (q) =>
      ofStatus(q).eq("lastActivity", after.lastActivity).lt("_creationTime", after._creationTime),
    )
    .order("desc");
  yield* sessions
    .withIndex("by_workerId_and_status_and_lastActivity", (q) => ofStatus(q).lt("lastActivity", after.lastActivity))
    .order("desc");
}

/** A worker's sessions in list order, strictly after the session `after`: open ones, then ended ones. */
async function* sessionsInOrder(ctx: QueryCtx, workerId: string, after: SessionDoc | undefined) {
  if (after === undefined || after.status !== "terminated") {
    const [active, idle] = [sessionsAfter(ctx, workerId, "active", after), sessionsAfter(ctx, workerId, "idle", after)];
    yield* mergedLists(active, idle, (x, y) => newestActivityFirst(x, y) <= 0);
    yield* sessionsAfter(ctx, workerId, "terminated", undefined);
  } else {
    yield* sessionsAfter(ctx, workerId, "terminated", after);
  }
}

/**
 * A page of a worker's sessions: active and idle first, then terminated;
 * newest activity first in each; after the session the last page ended with.
 */
export const listSessionsPage = serverQuery({
  args: { ...owner, workerId: v.string(), afterSessionId: v.optional(v.string()), limit: v.number() },
  returns: v.object({ sessions: v.array(sessionValidator), hasMore: v.boolean() }),
  handler: async (ctx, { userId, workerId, afterSessionId, limit }) => {
    await ownedWorker(ctx, userId, workerId);
    const after = (await pageStart(ctx, "chatSessions", afterSessionId, (last) => last.workerId === workerId));
    const { items, hasMore } = await cutPage(sessionsInOrder(ctx, workerId, after), pageLimit(limit), (s) =>
      textSize(s.title),
    );
    return { sessions: items.map(chatSessionRecord), hasMore };
  },
});

/** Queue a user message (`pending`); it wakes an idle session and is refused on an ended one. */
export const sendMessage = serverMutation({
  args: { ...ownerOfSession, content: v.string(), agent: v.optional(v.string()) },
  returns: messageValidator,
  handler: async (ctx, { userId, chatSessionId, content, agent }) => {
    validateMessage(content);
    const session = ensureOpen(await ownedSession(ctx, userId, chatSessionId));
    if (agent !== undefined) checkAgent((await workerById(ctx, session.workerId))!.agents ?? [], agent);
    const now = Date.now();
    await ctx.db.patch(session._id, { status: "active", lastActivity: now });
    const id = await ctx.db.insert("chatMessages", {
      messageId: await newId(ctx, "message"),
      chatSessionId,
      machineId: session.machineId,
      role: "user",
      content,
      status: "pending",
      timestamp: now,
      abortRequested: false,
      agent,
    });
    const message = (await ctx.db.get(id))!;
    await trackTurn(ctx, message);
    return chatMessageRecord(message);
  },
});

/** One of the user's messages still queued (not claimed) in a session still open. */
async function queuedMessage(ctx: MutationCtx, userId: string, messageId: string) {
  const message = await messageById(ctx, messageId);
  const session = message === null ? null : await liveSession(ctx, message.chatSessionId);
  if (message === null || session === null || session.userId !== userId) fail("NotFound", NO_MESSAGE);
  ensureOpen(session);
  return ensureQueued(message);
}

/** Change the text of one of the user's queued messages before the machine claims it. */
export const editMessage = serverMutation({
  args: { ...owner, messageId: v.string(), content: v.string() },
  returns: messageValidator,
  handler: async (ctx, { userId, messageId, content }) => {
    validateMessage(content);
    const message = await queuedMessage(ctx, userId, messageId);
    return chatMessageRecord(await patched(ctx, message, { content }));
  },
});

/** Delete one of the user's queued messages before the machine claims it. */
export const cancelMessage = serverMutation({
  args: { ...owner, messageId: v.string() },
  returns: v.null(),
  handler: async (ctx, { userId, messageId }) => {
    const message = await queuedMessage(ctx, userId, messageId);
    await ctx.db.delete(message._id);
    await forgetTurn(ctx, message.messageId);
    return null;
  },
});

/** One page of the session's messages, newest first, after the message the last page ended with. */
export const listMessagesPage = serverQuery({
  args: { ...ownerOfSession, afterMessageId: v.optional(v.string()), limit: v.number() },
  returns: v.object({ messages: v.array(messageValidator), hasMore: v.boolean() }),
  handler: async (ctx, { userId, chatSessionId, afterMessageId, limit }) => {
    await ownedSession(ctx, userId, chatSessionId);
    return await messagesPage(ctx, chatSessionId, afterMessageId, pageLimit(limit));
  },
});

/** Segments of a long message of the user's session from `fromIndex` on (see lib/text.ts). */
export const messageText = serverQuery({
  args: { ...ownerOfSession, messageId: v.string(), fromIndex: v.number() },
  returns: v.array(v.string()),
  handler: async (ctx, { userId, chatSessionId, messageId, fromIndex }) => {
    await ownedSession(ctx, userId, chatSessionId);
    reachable(await messageById(ctx, messageId), (m) => m.chatSessionId === chatSessionId, NO_MESSAGE);
    return await readSegments(ctx, messageId, fromIndex);
  },
});

/** Ask the machine to stop the reply being streamed; null if nothing is streaming. */
export const requestAbort = serverMutation({
  args: ownerOfSession,
  returns: v.union(messageValidator, v.null()),
  handler: async (ctx, { userId, chatSessionId }) => {
    await ownedSession(ctx, userId, chatSessionId);
    const reply = await streamingReply(ctx, chatSessionId);
    if (reply === null) return null;
    if (!reply.abortRequested) await ctx.db.patch(reply._id, { abortRequested: true });
    return chatMessageRecord((await ctx.db.get(reply._id))!);
  },
});

/**
 * A page of the session's permission requests still waiting for an answer (or
 * of all of them), oldest first, after the request the last page ended with.
 */
export const listPermissionsPage = serverQuery({
  args: {
    ...ownerOfSession,
    all: v.optional(v.boolean()),
    afterPermissionId: v.optional(v.string()),
    limit: v.number(),
  },
  returns: v.object({ permissions: v.array(permissionValidator), hasMore: v.boolean() }),
  handler: async (ctx, { userId, chatSessionId, all, afterPermissionId, limit }) => {
    await ownedSession(ctx, userId, chatSessionId);
    const page = { all, afterId: afterPermissionId, limit };
    const size = (p: Doc<"permissionRequests">) => textSize(p.tool, p.description, p.file, p.diff);
    const { items, hasMore } = await requestsPage(ctx, "permissionRequests", chatSessionId, page, size);
    return { permissions: items.map(permissionRecord), hasMore };
  },
});

/** Answer a pending request; Conflict if it was already answered or has expired. */
export const answerPermission = serverMutation({
  args: { ...owner, permissionId: v.string(), answer: permissionAnswer },
  returns: permissionValidator,
  handler: async (ctx, { userId, permissionId, answer }) => {
    const { request } = await ownedRequest(ctx, "permissionRequests", userId, permissionId);
    if (request.status !== "pending") {
      fail("Conflict", "This permission request is no longer waiting for an answer.");
    }
    return permissionRecord(await patched(ctx, request, { status: "answered", answer }));
  },
});

/**
 * The chunks with a sequence above `afterSequence`, in order: a reader's cursor.
 * Up to CHUNK_PAGE of them and only as many as fit PAGE_BYTES (a chunk holds up
 * to 64,000 characters), the first always; the reader asks again after the last.
 */
export const chunksAfter = serverQuery({
  args: { ...ownerOfSession, afterSequence: v.number() },
  returns: v.array(chunkValidator),
  handler: async (ctx, { userId, chatSessionId, afterSequence }) => {
    await ownedSession(ctx, userId, chatSessionId);
    const { items } = await cutPage(sessionChunksAfter(ctx, chatSessionId, afterSequence), CHUNK_PAGE, (c) => textSize(c.chunk));
    return items.map(chatChunkRecord);
  },
});
