/**
 * Chat as the owner of a session sees it, through the web server: sessions,
 * messages, stopping a reply, answering permission requests, and reading the
 * chunks a reply streams in. Another user's session is "not found".
 */
import type { Doc } from "./_generated/dataModel";
import { mutation, query, type MutationCtx } from "./_generated/server";
import { v } from "convex/values";
import { ownedPermission, ownedSession, ownedWorker } from "./lib/access";
import { requireServer } from "./lib/auth";
import { ensureOpen, messagesOf, streamingReply } from "./lib/chat";
import { fail } from "./lib/errors";
import { newId } from "./lib/ids";
import { CHUNK_PAGE, MAX_PERMISSIONS, MAX_SESSIONS } from "./lib/limits";
import { chatChunkRecord, chatMessageRecord, chatSessionRecord, permissionRecord } from "./lib/records";
import { checkModel, validateMessage, validateSessionUpdate } from "./lib/rules";
import { agentTurnOf, requestRedo, requestUndo } from "./lib/undo";
import {
  chatChunkRecord as chunkValidator,
  chatMessageRecord as messageValidator,
  chatSessionRecord as sessionValidator,
  permissionAnswer,
  permissionRecord as permissionValidator,
  serverCaller,
  type ChatSessionStatus,
} from "./lib/validators";

const owner = { ...serverCaller, userId: v.string() };
const ownerOfSession = { ...owner, chatSessionId: v.string() };

/** Open an `active` session on a worker with one of the worker's models. */
export const startSession = mutation({
  args: { ...owner, workerId: v.string(), model: v.string() },
  returns: sessionValidator,
  handler: async (ctx, { serverSecret, userId, workerId, model }) => {
    requireServer(serverSecret);
    const worker = await ownedWorker(ctx, userId, workerId);
    checkModel(worker.status, worker.models, model);
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
export const endSession = mutation({
  args: ownerOfSession,
  returns: sessionValidator,
  handler: async (ctx, { serverSecret, userId, chatSessionId }) => {
    requireServer(serverSecret);
    return await setStatus(ctx, userId, chatSessionId, ["active", "idle"], "terminated");
  },
});

/** Reopen a terminated session as `idle`; an open one is returned unchanged. */
export const restoreSession = mutation({
  args: ownerOfSession,
  returns: sessionValidator,
  handler: async (ctx, { serverSecret, userId, chatSessionId }) => {
    requireServer(serverSecret);
    return await setStatus(ctx, userId, chatSessionId, ["terminated"], "idle");
  },
});

/** Give one of the user's sessions a title (not blank, bounded, trimmed). */
export const renameSession = mutation({
  args: { ...ownerOfSession, title: v.string() },
  returns: sessionValidator,
  handler: async (ctx, { serverSecret, userId, chatSessionId, title }) => {
    requireServer(serverSecret);
    const { title: trimmed } = validateSessionUpdate(undefined, undefined, title);
    const session = await ownedSession(ctx, userId, chatSessionId);
    await ctx.db.patch(session._id, { title: trimmed });
    return chatSessionRecord((await ctx.db.get(session._id))!);
  },
});

/** Undo a finished reply of the session and every later one (the machine reverts the agent). */
export const undoTurn = mutation({
  args: { ...ownerOfSession, messageId: v.string() },
  returns: sessionValidator,
  handler: async (ctx, { serverSecret, userId, chatSessionId, messageId }) => {
    requireServer(serverSecret);
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
    await ctx.db.patch(session._id, requestUndo(session, reply, agentTurnOf(part), streaming, Date.now()));
    return chatSessionRecord((await ctx.db.get(session._id))!);
  },
});

/** Redo what is undone in the session. */
export const redoTurns = mutation({
  args: ownerOfSession,
  returns: sessionValidator,
  handler: async (ctx, { serverSecret, userId, chatSessionId }) => {
    requireServer(serverSecret);
    const session = await ownedSession(ctx, userId, chatSessionId);
    const streaming = await streamingReply(ctx, chatSessionId);
    const newest = await ctx.db
      .query("chatMessages")
      .withIndex("by_chatSessionId", (q) => q.eq("chatSessionId", chatSessionId))
      .order("desc")
      .first();
    await ctx.db.patch(session._id, requestRedo(session, streaming, newest?.timestamp));
    return chatSessionRecord((await ctx.db.get(session._id))!);
  },
});

/** One of the user's sessions. */
export const getSession = query({
  args: ownerOfSession,
  returns: sessionValidator,
  handler: async (ctx, { serverSecret, userId, chatSessionId }) => {
    requireServer(serverSecret);
    return chatSessionRecord(await ownedSession(ctx, userId, chatSessionId));
  },
});

function newestActivityFirst(a: Doc<"chatSessions">, b: Doc<"chatSessions">): number {
  return b.lastActivity - a.lastActivity || b.createdAt - a.createdAt || b._creationTime - a._creationTime;
}

/** A worker's sessions: active and idle first, then terminated; newest activity first in each. */
export const listSessions = query({
  args: { ...owner, workerId: v.string() },
  returns: v.array(sessionValidator),
  handler: async (ctx, { serverSecret, userId, workerId }) => {
    requireServer(serverSecret);
    await ownedWorker(ctx, userId, workerId);
    const newest = (status: ChatSessionStatus, limit: number) =>
      limit <= 0
        ? Promise.resolve([])
        : ctx.db
            .query("chatSessions")
            .withIndex("by_workerId_and_status_and_lastActivity", (q) =>
              q.eq("workerId", workerId).eq("status", status),
            )
            .order("desc")
            .take(limit);
    const open = [...(await newest("active", MAX_SESSIONS)), ...(await newest("idle", MAX_SESSIONS))]
      .sort(newestActivityFirst)
      .slice(0, MAX_SESSIONS);
    const ended = (await newest("terminated", MAX_SESSIONS - open.length)).sort(newestActivityFirst);
    return [...open, ...ended].map(chatSessionRecord);
  },
});

/** Queue a user message (`pending`); it wakes an idle session and is refused on an ended one. */
export const sendMessage = mutation({
  args: { ...ownerOfSession, content: v.string() },
  returns: messageValidator,
  handler: async (ctx, { serverSecret, userId, chatSessionId, content }) => {
    requireServer(serverSecret);
    validateMessage(content);
    const session = ensureOpen(await ownedSession(ctx, userId, chatSessionId));
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
    });
    return chatMessageRecord((await ctx.db.get(id))!);
  },
});

/** The session's messages, oldest first. */
export const listMessages = query({
  args: ownerOfSession,
  returns: v.array(messageValidator),
  handler: async (ctx, { serverSecret, userId, chatSessionId }) => {
    requireServer(serverSecret);
    await ownedSession(ctx, userId, chatSessionId);
    return await messagesOf(ctx, chatSessionId);
  },
});

/** Ask the machine to stop the reply being streamed; null if nothing is streaming. */
export const requestAbort = mutation({
  args: ownerOfSession,
  returns: v.union(messageValidator, v.null()),
  handler: async (ctx, { serverSecret, userId, chatSessionId }) => {
    requireServer(serverSecret);
    await ownedSession(ctx, userId, chatSessionId);
    const reply = await streamingReply(ctx, chatSessionId);
    if (reply === null) return null;
    if (!reply.abortRequested) await ctx.db.patch(reply._id, { abortRequested: true });
    return chatMessageRecord((await ctx.db.get(reply._id))!);
  },
});

/** Permission requests of the session still waiting for an answer (or all of them), oldest first. */
export const listPermissions = query({
  args: { ...ownerOfSession, all: v.optional(v.boolean()) },
  returns: v.array(permissionValidator),
  handler: async (ctx, { serverSecret, userId, chatSessionId, all }) => {
    requireServer(serverSecret);
    await ownedSession(ctx, userId, chatSessionId);
    const found = await ctx.db
      .query("permissionRequests")
      .withIndex("by_chatSessionId_and_status", (q) =>
        all ? q.eq("chatSessionId", chatSessionId) : q.eq("chatSessionId", chatSessionId).eq("status", "pending"),
      )
      .take(MAX_PERMISSIONS);
    found.sort((a, b) => a.createdAt - b.createdAt || a._creationTime - b._creationTime);
    return found.map(permissionRecord);
  },
});

/** Answer a pending request; Conflict if it was already answered or has expired. */
export const answerPermission = mutation({
  args: { ...owner, permissionId: v.string(), answer: permissionAnswer },
  returns: permissionValidator,
  handler: async (ctx, { serverSecret, userId, permissionId, answer }) => {
    requireServer(serverSecret);
    const { request } = await ownedPermission(ctx, userId, permissionId);
    if (request.status !== "pending") {
      fail("Conflict", "This permission request is no longer waiting for an answer.");
    }
    await ctx.db.patch(request._id, { status: "answered", answer });
    return permissionRecord((await ctx.db.get(request._id))!);
  },
});

/** Up to CHUNK_PAGE chunks with a sequence above `afterSequence`, in order: a reader's cursor. */
export const chunksAfter = query({
  args: { ...ownerOfSession, afterSequence: v.number() },
  returns: v.array(chunkValidator),
  handler: async (ctx, { serverSecret, userId, chatSessionId, afterSequence }) => {
    requireServer(serverSecret);
    await ownedSession(ctx, userId, chatSessionId);
    const chunks = await ctx.db
      .query("chatChunks")
      .withIndex("by_chatSessionId_and_sequence", (q) =>
        q.eq("chatSessionId", chatSessionId).gt("sequence", afterSequence),
      )
      .take(CHUNK_PAGE);
    return chunks.map(chatChunkRecord);
  },
});
