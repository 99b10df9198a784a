/**
 * Questions the agent asks during a reply (opencode's `question` tool): the
 * machine records them, the owner answers or dismisses them through the web
 * server, the machine passes the answer on. Same rules and sentences as
 * orchestrator/domain/questions.py.
 */
import type { Doc } from "./_generated/dataModel";
import { mutation, query, type MutationCtx, type QueryCtx } from "./_generated/server";
import { v } from "convex/values";
import { liveSession, machineMessage, ownedSession, workerById } from "./lib/access";
import { requireMachine, requireServer } from "./lib/auth";
import { ensureStreaming } from "./lib/chat";
import { fail } from "./lib/errors";
import { newId } from "./lib/ids";
import { MAX_MACHINES, MAX_PERMISSIONS, MAX_USERS, MAX_WORK_PERMISSIONS } from "./lib/limits";
import { permissionRecord, questionRecord } from "./lib/records";
import { validateAnswers, validateQuestionRequest } from "./lib/rules";
import {
  machineToken,
  permissionRecord as permissionValidator,
  question,
  questionRecord as questionValidator,
  serverCaller,
} from "./lib/validators";

const NO_QUESTION = "No such question.";
const owner = { ...serverCaller, userId: v.string() };

async function questionById(ctx: QueryCtx, questionId: string): Promise<Doc<"questionRequests"> | null> {
  return await ctx.db
    .query("questionRequests")
    .withIndex("by_questionId", (q) => q.eq("questionId", questionId))
    .unique();
}

/** Answered questions of the machine's sessions, by session, for its work list. */
export async function answeredQuestions(
  ctx: QueryCtx,
  machineId: string,
): Promise<Map<string, Doc<"questionRequests">[]>> {
  const found = await ctx.db
    .query("questionRequests")
    .withIndex("by_machineId_and_status", (q) => q.eq("machineId", machineId).eq("status", "answered"))
    .take(MAX_WORK_PERMISSIONS);
  found.sort((a, b) => a.createdAt - b.createdAt || a._creationTime - b._creationTime);
  const bySession = new Map<string, Doc<"questionRequests">[]>();
  for (const request of found) {
    bySession.set(request.chatSessionId, [...(bySession.get(request.chatSessionId) ?? []), request]);
  }
  return bySession;
}

/** When a reply ends, what it asked can no longer be answered. */
export async function expireQuestions(ctx: MutationCtx, messageId: string): Promise<void> {
  for (const waiting of ["pending", "answered"] as const) {
    const requests = await ctx.db
      .query("questionRequests")
      .withIndex("by_messageId_and_status", (q) => q.eq("messageId", messageId).eq("status", waiting))
      .take(MAX_WORK_PERMISSIONS);
    for (const request of requests) await ctx.db.patch(request._id, { status: "expired" });
  }
}

/** Questions of the session waiting for an answer (or all of them), oldest first. */
export const listQuestions = query({
  args: { ...owner, chatSessionId: v.string(), all: v.optional(v.boolean()) },
  returns: v.array(questionValidator),
  handler: async (ctx, { serverSecret, userId, chatSessionId, all }) => {
    requireServer(serverSecret);
    await ownedSession(ctx, userId, chatSessionId);
    const found = await ctx.db
      .query("questionRequests")
      .withIndex("by_chatSessionId_and_status", (q) =>
        all ? q.eq("chatSessionId", chatSessionId) : q.eq("chatSessionId", chatSessionId).eq("status", "pending"),
      )
      .take(MAX_PERMISSIONS);
    found.sort((a, b) => a.createdAt - b.createdAt || a._creationTime - b._creationTime);
    return found.map(questionRecord);
  },
});

/** Every permission request and question of the session, oldest first (the chat stream's). */
export const listRequests = query({
  args: { ...owner, chatSessionId: v.string() },
  returns: v.object({ permissions: v.array(permissionValidator), questions: v.array(questionValidator) }),
  handler: async (ctx, { serverSecret, userId, chatSessionId }) => {
    requireServer(serverSecret);
    await ownedSession(ctx, userId, chatSessionId);
    const byAge = (a: { createdAt: number; _creationTime: number }, b: { createdAt: number; _creationTime: number }) =>
      a.createdAt - b.createdAt || a._creationTime - b._creationTime;
    const permissions = await ctx.db
      .query("permissionRequests")
      .withIndex("by_chatSessionId_and_status", (q) => q.eq("chatSessionId", chatSessionId))
      .take(MAX_PERMISSIONS);
    const questions = await ctx.db
      .query("questionRequests")
      .withIndex("by_chatSessionId_and_status", (q) => q.eq("chatSessionId", chatSessionId))
      .take(MAX_PERMISSIONS);
    return {
      permissions: permissions.sort(byAge).map(permissionRecord),
      questions: questions.sort(byAge).map(questionRecord),
    };
  },
});

/** Answer a pending question (no answers: dismiss it); Conflict once answered or expired. */
export const answerQuestion = mutation({
  args: { ...owner, questionId: v.string(), answers: v.union(v.array(v.array(v.string())), v.null()) },
  returns: questionValidator,
  handler: async (ctx, { serverSecret, userId, questionId, answers }) => {
    requireServer(serverSecret);
    const request = await questionById(ctx, questionId);
    const session = request && (await liveSession(ctx, request.chatSessionId));
    if (request === null || !session || session.userId !== userId) fail("NotFound", NO_QUESTION);
    if (request.status !== "pending") fail("Conflict", "This question is no longer waiting for an answer.");
    const checked = answers === null ? undefined : validateAnswers(request.questions, answers);
    await ctx.db.patch(request._id, { status: "answered", answers: checked, dismissed: checked === undefined });
    return questionRecord((await ctx.db.get(request._id))!);
  },
});

/** The agent asks the owner questions during a reply; they show as pending. */
export const recordQuestion = mutation({
  args: { ...machineToken, messageId: v.string(), agentRequestId: v.string(), questions: v.array(question) },
  returns: questionValidator,
  handler: async (ctx, { messageId, agentRequestId, questions, ...token }) => {
    validateQuestionRequest(agentRequestId, questions);
    const machine = await requireMachine(ctx, token);
    const { message, session } = await machineMessage(ctx, machine.machineId, messageId);
    ensureStreaming(message);
    const id = await ctx.db.insert("questionRequests", {
      questionId: await newId(ctx, "question"),
      chatSessionId: session.chatSessionId,
      messageId,
      machineId: machine.machineId,
      agentRequestId,
      questions,
      status: "pending",
      createdAt: Date.now(),
      dismissed: false,
    });
    return questionRecord((await ctx.db.get(id))!);
  },
});

/** The owner's answer (or dismissal) was passed on to the agent. */
export const resolveQuestion = mutation({
  args: { ...machineToken, questionId: v.string() },
  returns: questionValidator,
  handler: async (ctx, { questionId, ...token }) => {
    const machine = await requireMachine(ctx, token);
    const request = await questionById(ctx, questionId);
    const session = request && request.machineId === machine.machineId && (await liveSession(ctx, request.chatSessionId));
    if (request === null || !session) fail("NotFound", NO_QUESTION);
    if (request.status !== "answered") fail("Conflict", "This question has no answer to pass on.");
    await ctx.db.patch(request._id, { status: "resolved" });
    return questionRecord((await ctx.db.get(request._id))!);
  },
});

/** Pending questions of one user (or of every user), oldest first: the inbox and the notifier. */
export const listWaiting = query({
  args: { ...serverCaller, userId: v.union(v.string(), v.null()) },
  returns: v.array(
    v.object({
      userId: v.string(),
      request: questionValidator,
      machineId: v.string(),
      machineName: v.string(),
      workerId: v.string(),
      workerName: v.union(v.string(), v.null()),
      workerDirectory: v.string(),
    }),
  ),
  handler: async (ctx, { serverSecret, userId }) => {
    requireServer(serverSecret);
    const machines =
      userId === null
        ? await ctx.db.query("machines").take(MAX_USERS)
        : await ctx.db
            .query("machines")
            .withIndex("by_userId", (q) => q.eq("userId", userId))
            .take(MAX_MACHINES);
    const waiting = [];
    for (const machine of machines) {
      const requests = await ctx.db
        .query("questionRequests")
        .withIndex("by_machineId_and_status", (q) => q.eq("machineId", machine.machineId).eq("status", "pending"))
        .take(MAX_PERMISSIONS);
      for (const request of requests) {
        const session = await liveSession(ctx, request.chatSessionId);
        const worker = session && (await workerById(ctx, session.workerId));
        if (!session || !worker) continue;
        waiting.push({
          userId: session.userId,
          request: questionRecord(request),
          machineId: machine.machineId,
          machineName: machine.name,
          workerId: worker.workerId,
          workerName: worker.name ?? null,
          workerDirectory: worker.directory,
        });
      }
    }
    return waiting.sort((a, b) => a.request.createdAt - b.request.createdAt);
  },
});
