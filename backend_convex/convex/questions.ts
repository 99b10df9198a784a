/**
 * Questions the agent asks during a reply (opencode's `question` tool): the
 * machine records them, the owner answers or dismisses them through the web
 * server, the machine passes the answer on. Same rules and sentences as
 * orchestrator/domain/questions.py.
 */
import type { Doc } from "./_generated/dataModel";
import { mutation, type QueryCtx } from "./_generated/server";
import { getDocumentSize, v, type Value } from "convex/values";
import { owner, ownerOfSession, serverMutation, serverQuery } from "./lib/functions";
import { ownedRequest, ownedSession, type RequestTable } from "./lib/access";
import { requireMachine } from "./lib/auth";
import { pendingRequest, requestsPage, resolveRequest, sessionRequests } from "./lib/chat";
import { fail } from "./lib/errors";
import { newId } from "./lib/ids";
import { waitingQuery } from "./lib/inbox";
import { MAX_WORK_PERMISSIONS } from "./lib/limits";
import { cutPage, MAX_PAGE, PAGE_BYTES } from "./lib/paging";
import { patched, permissionRecord, questionRecord } from "./lib/records";
import { validateAnswers, validateQuestionRequest } from "./lib/rules";
import {
  machineToken,
  permissionRecord as permissionValidator,
  question,
  questionRecord as questionValidator,
} from "./lib/validators";

const docSize = (doc: object) => getDocumentSize(doc as Record<string, Value>);

/**
 * Estimated bytes of the answered permission requests, and of the answered questions,
 * in a machine's work list: with its queued messages (PAGE_BYTES) the list stays near 3 MiB.
 */
export const ANSWERED_BYTES = PAGE_BYTES / 4;

/**
 * Answered questions of the machine's sessions, by session, for its work list:
 * the oldest, cut by size too (ANSWERED_BYTES); the rest follow as these are passed on.
 */
export async function answeredQuestions(
  ctx: QueryCtx,
  machineId: string,
): Promise<Map<string, Doc<"questionRequests">[]>> {
  const { items: found } = await cutPage(
    ctx.db
      .query("questionRequests")
      .withIndex("by_machineId_and_status", (q) => q.eq("machineId", machineId).eq("status", "answered")),
    MAX_WORK_PERMISSIONS,
    docSize,
    ANSWERED_BYTES,
  );
  const bySession = new Map<string, Doc<"questionRequests">[]>();
  for (const request of found) {
    bySession.set(request.chatSessionId, [...(bySession.get(request.chatSessionId) ?? []), request]);
  }
  return bySession;
}

/**
 * A page of the session's questions waiting for an answer (or of all of them),
 * oldest first, after the question the last page ended with.
 */
export const listQuestionsPage = serverQuery({
  args: {
    ...ownerOfSession,
    all: v.optional(v.boolean()),
    afterQuestionId: v.optional(v.string()),
    limit: v.number(),
  },
  returns: v.object({ questions: v.array(questionValidator), hasMore: v.boolean() }),
  handler: async (ctx, { userId, chatSessionId, all, afterQuestionId, limit }) => {
    await ownedSession(ctx, userId, chatSessionId);
    const page = { all, afterId: afterQuestionId, limit };
    const { items, hasMore } = await requestsPage(ctx, "questionRequests", chatSessionId, page, docSize);
    return { questions: items.map(questionRecord), hasMore };
  },
});

/**
 * The first page of every permission request and of every question of the
 * session, oldest first (the chat stream's), each cut at half of PAGE_BYTES; the
 * reader reads the rest of a list whose `hasMore…` is set from
 * chat:listPermissionsPage or listQuestionsPage.
 */
export const listRequests = serverQuery({
  args: ownerOfSession,
  returns: v.object({
    permissions: v.array(permissionValidator),
    hasMorePermissions: v.boolean(),
    questions: v.array(questionValidator),
    hasMoreQuestions: v.boolean(),
  }),
  handler: async (ctx, { userId, chatSessionId }) => {
    await ownedSession(ctx, userId, chatSessionId);
    const firstPage = <T extends RequestTable>(table: T) =>
      cutPage(sessionRequests(ctx, table, chatSessionId, true, 0), MAX_PAGE, docSize, PAGE_BYTES / 2);
    const permissions = await firstPage("permissionRequests");
    const questions = await firstPage("questionRequests");
    return {
      permissions: permissions.items.map(permissionRecord),
      hasMorePermissions: permissions.hasMore,
      questions: questions.items.map(questionRecord),
      hasMoreQuestions: questions.hasMore,
    };
  },
});

/** Answer a pending question (no answers: dismiss it); Conflict once answered or expired. */
export const answerQuestion = serverMutation({
  args: { ...owner, questionId: v.string(), answers: v.union(v.array(v.array(v.string())), v.null()) },
  returns: questionValidator,
  handler: async (ctx, { userId, questionId, answers }) => {
    const { request } = await ownedRequest(ctx, "questionRequests", userId, questionId);
    if (request.status !== "pending") fail("Conflict", "This question is no longer waiting for an answer.");
    const checked = answers === null ? undefined : validateAnswers(request.questions, answers);
    return questionRecord(await patched(ctx, request, { status: "answered", answers: checked, dismissed: checked === undefined }));
  },
});

/** The agent asks the owner questions during a reply; they show as pending. */
export const recordQuestion = mutation({
  args: { ...machineToken, messageId: v.string(), agentRequestId: v.string(), questions: v.array(question) },
  returns: questionValidator,
  handler: async (ctx, { messageId, agentRequestId, questions, ...token }) => {
    validateQuestionRequest(agentRequestId, questions);
    const machine = await requireMachine(ctx, token);
    const pending = await pendingRequest(ctx, machine.machineId, messageId);
    const id = await ctx.db.insert("questionRequests", {
      questionId: await newId(ctx, "question"),
      ...pending,
      agentRequestId,
      questions,
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
    return questionRecord(await resolveRequest(ctx, "questionRequests", machine.machineId, questionId));
  },
});

/**
 * A page of the pending questions of one user (or of every user), machine by
 * machine (lib/inbox.ts waitingPage): the inbox and the notifier read on from
 * `next` until it is null and sort the whole list by age.
 */
export const listWaiting = waitingQuery("questionRequests", questionValidator, questionRecord);
