/**
 * Chat as the machine running the session's worker sees it: the work list,
 * claiming messages, streaming chunks, ending replies, permission requests.
 *
 * Every call is authenticated by the machine token and reaches only sessions
 * of that machine's workers (anything else is "not found"). The rules that
 * must hold under concurrency -- a message claimed once and in order, one
 * streaming reply per session, gap-free chunk sequences -- are each checked
 * and written in one mutation, which Convex runs as a serializable
 * transaction.
 */
import type { Doc } from "./_generated/dataModel";
import { internalMutation, mutation, query, type MutationCtx } from "./_generated/server";
import { v } from "convex/values";
import { machineMessage, machineSession, messageById, workerById } from "./lib/access";
import { requireMachine } from "./lib/auth";
import { ensureOpen, ensureStreaming, insertChunk, lastSequence, messagesPage, pendingRequest, resolveRequest, streamingReply } from "./lib/chat";
import { expireAsked } from "./lib/expiry";
import { recordFinished } from "./lib/inbox";
import { mergeReply } from "./lib/partText";
import { cutPage, pageLimit, textSize } from "./lib/paging";
import { readSegments, replaceContent } from "./lib/text";
import { trackTurn } from "./lib/turns";
import { fail } from "./lib/errors";
import { newId } from "./lib/ids";
import { MAX_REPLY_CHUNKS, MAX_WORK_MESSAGES, MAX_WORK_PERMISSIONS, MAX_WORK_SESSIONS } from "./lib/limits";
import { chatChunkRecord, chatMessageRecord, chatSessionRecord, patched, permissionRecord, questionRecord } from "./lib/records";
import { finishUndo } from "./lib/undo";
import { ANSWERED_BYTES, answeredQuestions } from "./questions";
import {
  validateChunk,
  validateEnding,
  validatePermissionEdit,
  validatePermissionRequest,
  validateReply,
  validateSessionUpdate,
} from "./lib/rules";
import {
  chatChunkRecord as chunkValidator,
  chatMessageRecord as messageValidator,
  chatSessionRecord as sessionValidator,
  chatSessionStatus,
  machineToken,
  permissionRecord as permissionValidator,
  sessionWork,
  type MessageStatus,
} from "./lib/validators";

/**
 * Every open session of the machine's workers, oldest first, with its queued
 * messages, its streaming reply and the answers to pass on; and an ended
 * session while a reply of it still streams (so the machine stops it).
 */
export const work = query({
  args: { ...machineToken },
  returns: v.array(sessionWork),
  handler: async (ctx, token) => {
    const machine = await requireMachine(ctx, token);
    const machineId = machine.machineId;
    const byStatus = <S extends "active" | "idle">(status: S) =>
      ctx.db
        .query("chatSessions")
        .withIndex("by_machineId_and_status", (q) => q.eq("machineId", machineId).eq("status", status))
        .take(MAX_WORK_SESSIONS);
    const messages = (status: "pending" | "streaming") =>
      ctx.db
        .query("chatMessages")
        .withIndex("by_machineId_and_status", (q) => q.eq("machineId", machineId).eq("status", status))
        .take(MAX_WORK_MESSAGES);
    const sessions = new Map<string, Doc<"chatSessions">>();
    for (const session of [...(await byStatus("active")), ...(await byStatus("idle"))]) {
      sessions.set(session.chatSessionId, session);
    }
    const streaming = new Map<string, Doc<"chatMessages">>();
    for (const reply of await messages("streaming")) {
      streaming.set(reply.chatSessionId, reply);
      if (!sessions.has(reply.chatSessionId)) {
        const ended = await ctx.db
          .query("chatSessions")
          .withIndex("by_chatSessionId", (q) => q.eq("chatSessionId", reply.chatSessionId))
          .unique();
        if (ended !== null) sessions.set(ended.chatSessionId, ended);
      }
    }
    // Sessions of a removed worker wait to be purged; a pending worker has none to run.
    const runnable = new Map<string, boolean>();
    const listed: Doc<"chatSessions">[] = [];
    for (const session of sessions.values()) {
      if (!runnable.has(session.workerId)) {
        const worker = await workerById(ctx, session.workerId);
        runnable.set(session.workerId, worker !== null && worker.status !== "pending_authorization");
      }
      if (runnable.get(session.workerId)) listed.push(session);
    }
    listed.sort((a, b) => a.createdAt - b.createdAt || a._creationTime - b._creationTime);
    const pending = new Map<string, Doc<"chatMessages">[]>();
    // Queued messages oldest first, cut by size too (each holds up to 100 KB inline), so a
    // session's list is always the head of its queue; the rest follow as those are claimed.
    const queued = await cutPage(
      ctx.db
        .query("chatMessages")
        .withIndex("by_machineId_and_status", (q) => q.eq("machineId", machineId).eq("status", "pending")),
      MAX_WORK_MESSAGES,
      (message) => textSize(message.content),
    );
    for (const message of queued.items) {
      pending.set(message.chatSessionId, [...(pending.get(message.chatSessionId) ?? []), message]);
    }
    const answered = new Map<string, Doc<"permissionRequests">[]>();
    // Answered requests oldest first, cut by size too (an edit carries its diff); the rest
    // follow as the machine passes these on.
    const { items: requests } = await cutPage(
      ctx.db
        .query("permissionRequests")
        .withIndex("by_machineId_and_status", (q) => q.eq("machineId", machineId).eq("status", "answered")),
      MAX_WORK_PERMISSIONS,
      (request) => textSize(request.tool, request.description, request.file, request.diff),
      ANSWERED_BYTES,
    );
    for (const request of requests) {
      answered.set(request.chatSessionId, [...(answered.get(request.chatSessionId) ?? []), request]);
    }
    const questions = await answeredQuestions(ctx, machineId);
    return listed.map((session) => {
      const id = session.chatSessionId;
      const reply = streaming.get(id);
      return {
        session: chatSessionRecord(session),
        // An ended session's queued messages wait until it is restored.
        pendingMessages:
          session.status === "terminated" ? [] : (pending.get(id) ?? []).map(chatMessageRecord),
        streamingReply: reply === undefined ? null : chatMessageRecord(reply),
        answeredPermissions: (answered.get(id) ?? []).map(permissionRecord),
        answeredQuestions: (questions.get(id) ?? []).map(questionRecord),
      };
    });
  },
});

/** A page of a session's messages, newest first (history for an agent that lost its own). */
export const listSessionMessagesPage = query({
  args: { ...machineToken, chatSessionId: v.string(), afterMessageId: v.optional(v.string()), limit: v.number() },
  returns: v.object({ messages: v.array(messageValidator), hasMore: v.boolean() }),
  handler: async (ctx, { chatSessionId, afterMessageId, limit, ...token }) => {
    const machine = await requireMachine(ctx, token);
    await machineSession(ctx, machine.machineId, chatSessionId);
    return await messagesPage(ctx, chatSessionId, afterMessageId, pageLimit(limit));
  },
});

/** Segments of a long message of the machine's session from `fromIndex` on (see lib/text.ts). */
export const messageText = query({
  args: { ...machineToken, messageId: v.string(), fromIndex: v.number() },
  returns: v.array(v.string()),
  handler: async (ctx, { messageId, fromIndex, ...token }) => {
    const machine = await requireMachine(ctx, token);
    await machineMessage(ctx, machine.machineId, messageId);
    return await readSegments(ctx, messageId, fromIndex);
  },
});

/** Take the oldest pending user message of a session; returns the new `streaming` reply. */
export const claimMessage = mutation({
  args: { ...machineToken, messageId: v.string() },
  returns: messageValidator,
  handler: async (ctx, { messageId, ...token }) => {
    const machine = await requireMachine(ctx, token);
    const { message, session } = await machineMessage(ctx, machine.machineId, messageId);
    if (message.role !== "user" || message.status !== "pending") {
      fail("Conflict", "This message has already been claimed.");
    }
    ensureOpen(session);
    if ((await streamingReply(ctx, session.chatSessionId)) !== null) {
      fail("Conflict", "A reply of this session is still streaming. End it first.");
    }
    const oldest = await ctx.db
      .query("chatMessages")
      .withIndex("by_chatSessionId_and_status", (q) =>
        q.eq("chatSessionId", session.chatSessionId).eq("status", "pending"),
      )
      .first();
    if (oldest?.messageId !== messageId) {
      fail("Conflict", "An older message of this session must be claimed first.");
    }
    const now = Date.now();
    await ctx.db.patch(message._id, { status: "processing" });
    await trackTurn(ctx, { ...message, status: "processing" });
    const id = await ctx.db.insert("chatMessages", {
      messageId: await newId(ctx, "message"),
      chatSessionId: session.chatSessionId,
      machineId: machine.machineId,
      role: "assistant",
      content: "",
      status: "streaming",
      timestamp: now,
      replyTo: messageId,
      abortRequested: false,
      model: session.model,
    });
    await ctx.db.patch(session._id, { lastActivity: now });
    const reply = (await ctx.db.get(id))!;
    await trackTurn(ctx, reply);
    return chatMessageRecord(reply);
  },
});

/** Add streamed text to a reply under the session's next sequence number. */
export const appendChunk = mutation({
  args: { ...machineToken, messageId: v.string(), text: v.string() },
  returns: chunkValidator,
  handler: async (ctx, { messageId, text, ...token }) => {
    validateChunk(text);
    const machine = await requireMachine(ctx, token);
    const { message, session } = await machineMessage(ctx, machine.machineId, messageId);
    ensureStreaming(message);
    return chatChunkRecord(await insertChunk(ctx, session, messageId, text));
  },
});

async function finish(
  ctx: MutationCtx,
  token: { machineId: string; machineSecret: string },
  messageId: string,
  status: MessageStatus,
  content: string | null,
  error: string | undefined,
) {
  const machine = await requireMachine(ctx, token);
  const { message, session } = await machineMessage(ctx, machine.machineId, messageId);
  return await endMessage(ctx, message, session, status, content, error);
}

/** End a streaming reply with `status`; with no `content`, it keeps the text streamed so far. */
export async function endMessage(
  ctx: MutationCtx,
  message: Doc<"chatMessages">,
  session: Doc<"chatSessions">,
  status: MessageStatus,
  content: string | null,
  error: string | undefined,
) {
  const messageId = message.messageId;
  ensureStreaming(message);
  if (content === null) {
    // Keep what was streamed so far.
    const parts = await ctx.db
      .query("chatChunks")
      .withIndex("by_messageId_and_sequence", (q) => q.eq("messageId", messageId))
      .take(MAX_REPLY_CHUNKS);
    content = parts.map((part) => part.chunk).join("");
  }
  const now = Date.now();
  await ctx.db.patch(message._id, { status, error, ...(await replaceContent(ctx, message, content)) });
  await trackTurn(ctx, { ...message, status });
  const question = message.replyTo === undefined ? null : await messageById(ctx, message.replyTo);
  if (question !== null) {
    await ctx.db.patch(question._id, { status: "completed" });
    await trackTurn(ctx, { ...question, status: "completed" });
  }
  await expireAsked(ctx, messageId);
  const reply = { messageId, userId: session.userId, chatSessionId: session.chatSessionId };
  await recordFinished(ctx, reply, status, content, error, now);
  // The session's sequence is written once per reply, before its chunks go.
  await ctx.db.patch(session._id, { lastActivity: now, lastSequence: await lastSequence(ctx, session) });
  await mergeReply(ctx, messageId);
  return chatMessageRecord((await ctx.db.get(message._id))!);
}

/** End a reply successfully with its whole text (written once). */
export const completeMessage = mutation({
  args: { ...machineToken, messageId: v.string(), content: v.string() },
  returns: messageValidator,
  handler: async (ctx, { messageId, content, ...token }) => {
    validateReply(content);
    return await finish(ctx, token, messageId, "completed", content, undefined);
  },
});

/** End a reply as failed, interrupted or aborted, keeping the text streamed so far. */
export const endReply = mutation({
  args: { ...machineToken, messageId: v.string(), status: v.string(), reason: v.string() },
  returns: messageValidator,
  handler: async (ctx, { messageId, status, reason, ...token }) => {
    const ending = validateEnding(status, reason);
    return await finish(ctx, token, messageId, ending, null, reason);
  },
});

/** Record the agent's session ID, a title, or active/idle; null leaves a field as it is. */
export const updateSession = mutation({
  args: {
    ...machineToken,
    chatSessionId: v.string(),
    status: v.union(chatSessionStatus, v.null()),
    agentSessionId: v.union(v.string(), v.null()),
    title: v.union(v.string(), v.null()),
  },
  returns: sessionValidator,
  handler: async (ctx, { chatSessionId, status, agentSessionId, title, ...token }) => {
    const changes = validateSessionUpdate(status ?? undefined, agentSessionId ?? undefined, title ?? undefined);
    const machine = await requireMachine(ctx, token);
    const session = ensureOpen(await machineSession(ctx, machine.machineId, chatSessionId));
    const patch: Partial<Doc<"chatSessions">> = {};
    if (changes.status !== undefined) patch.status = changes.status;
    if (changes.agentSessionId !== undefined) patch.agentSessionId = changes.agentSessionId;
    // The agent's title never replaces one the session has (the owner's, or its job's name).
    if (changes.title !== undefined && session.title === undefined) patch.title = changes.title;
    return chatSessionRecord(await patched(ctx, session, patch));
  },
});

/** The undo/redo requests up to `applied` are carried out on the agent, or failed with `error`. */
export const reportUndo = mutation({
  args: { ...machineToken, chatSessionId: v.string(), applied: v.number(), error: v.union(v.string(), v.null()) },
  returns: sessionValidator,
  handler: async (ctx, { chatSessionId, applied, error, ...token }) => {
    const machine = await requireMachine(ctx, token);
    const session = await machineSession(ctx, machine.machineId, chatSessionId);
    return chatSessionRecord(await patched(ctx, session, finishUndo(session, applied, error)));
  },
});

/** The agent asks permission during a reply; the owner sees it as pending. */
export const recordPermission = mutation({
  args: {
    ...machineToken,
    messageId: v.string(),
    agentRequestId: v.string(),
    tool: v.string(),
    description: v.string(),
    // An edit's file and bounded diff; machines older than edit diffs leave them out.
    file: v.optional(v.string()),
    diff: v.optional(v.string()),
    diffSize: v.optional(v.number()),
  },
  returns: permissionValidator,
  handler: async (ctx, { messageId, agentRequestId, tool, description, file, diff, diffSize, ...token }) => {
    const request = validatePermissionRequest(agentRequestId, tool, description);
    const edit = file || diff || diffSize ? validatePermissionEdit(file ?? "", diff ?? "", diffSize ?? 0) : {};
    const machine = await requireMachine(ctx, token);
    const pending = await pendingRequest(ctx, machine.machineId, messageId);
    const id = await ctx.db.insert("permissionRequests", {
      permissionId: await newId(ctx, "permission"),
      ...pending,
      ...request,
      ...edit,
    });
    return permissionRecord((await ctx.db.get(id))!);
  },
});

/** The owner's answer was passed on to the agent. */
export const resolvePermission = mutation({
  args: { ...machineToken, permissionId: v.string() },
  returns: permissionValidator,
  handler: async (ctx, { permissionId, ...token }) => {
    const machine = await requireMachine(ctx, token);
    return permissionRecord(await resolveRequest(ctx, "permissionRequests", machine.machineId, permissionId));
  },
});

/** Expire the rest of what an ended reply asked (lib/expiry.ts), a bounded batch at a time. */
export const expireRest = internalMutation({
  args: { messageId: v.string() },
  returns: v.null(),
  handler: async (ctx, { messageId }): Promise<null> => {
    await expireAsked(ctx, messageId, false);
    return null;
  },
});
