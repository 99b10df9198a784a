/**
 * Deleting a machine or a worker together with everything below it.
 *
 * The record itself is deleted by the caller at once; its descendants go here
 * in batches of bounded size. A batch that runs out of budget schedules
 * `cleanup:purge` to carry on, so one deletion never exceeds a transaction's
 * limits however long the chat history is. Until then the leftovers are
 * unreachable, because every lookup checks the chain of parents (access.ts).
 */
import { internal } from "../_generated/api";
import type { TableNames } from "../_generated/dataModel";
import type { DatabaseWriter, MutationCtx } from "../_generated/server";
import { v, type GenericId, type Infer } from "convex/values";
import { budgetOf, eachRow, type Budget } from "./budget";
import { deleteRuns, pauseJobs } from "./jobs";

export { BYTES_BUDGET, budgetOf, eachRow, type Budget } from "./budget";

export const purgeTarget = v.object({
  kind: v.union(v.literal("machine"), v.literal("worker"), v.literal("session"), v.literal("job")),
  id: v.string(),
});
export type PurgeTarget = Infer<typeof purgeTarget>;

/** Deletions done inside the deleting mutation before the rest is scheduled. */
export const INLINE_BUDGET = 512;
/** Deletions per scheduled batch. */
export const BATCH_BUDGET = 2048;

/** A page of rows to delete. */
type Page = Promise<Array<{ _id: GenericId<TableNames> }>>;

/** Delete every row `page` returns until it returns none (true) or the budget runs out. */
export async function deleteEach(
  ctx: MutationCtx,
  page: (size: number) => Page,
  budget: Budget,
): Promise<boolean> {
  return await eachRow(page, budget, (row) => ctx.db.delete(row._id));
}

/**
 * A chat session's rows, table by table, `n` at a time; rows that point at a
 * message go before the messages.
 */
const SESSION_ROWS: Array<(db: DatabaseWriter, sessionId: string, n: number) => Page> = [
  (db, id, n) =>
    db.query("chatChunks").withIndex("by_chatSessionId_and_sequence", (q) => q.eq("chatSessionId", id)).take(n),
  (db, id, n) =>
    db.query("messageParts").withIndex("by_chatSessionId_and_position", (q) => q.eq("chatSessionId", id)).take(n),
  (db, id, n) => db.query("textSegments").withIndex("by_chatSessionId", (q) => q.eq("chatSessionId", id)).take(n),
  (db, id, n) =>
    db.query("permissionRequests").withIndex("by_chatSessionId_and_status", (q) => q.eq("chatSessionId", id)).take(n),
  (db, id, n) =>
    db.query("questionRequests").withIndex("by_chatSessionId_and_status", (q) => q.eq("chatSessionId", id)).take(n),
  (db, id, n) => db.query("finishedReplies").withIndex("by_chatSessionId", (q) => q.eq("chatSessionId", id)).take(n),
  (db, id, n) => db.query("openTurns").withIndex("by_chatSessionId", (q) => q.eq("chatSessionId", id)).take(n),
  (db, id, n) => db.query("chatMessages").withIndex("by_chatSessionId", (q) => q.eq("chatSessionId", id)).take(n),
];

async function purgeSession(ctx: MutationCtx, sessionId: string, budget: Budget): Promise<boolean> {
  for (const rows of SESSION_ROWS) {
    if (!(await deleteEach(ctx, (n) => rows(ctx.db, sessionId, n), budget))) return false;
  }
  const session = await ctx.db
    .query("chatSessions")
    .withIndex("by_chatSessionId", (q) => q.eq("chatSessionId", sessionId))
    .unique();
  if (session !== null) {
    if (budget.left <= 0) return false;
    await ctx.db.delete(session._id);
    budget.left--;
  }
  return true;
}

async function purgeSessionsOf(
  ctx: MutationCtx,
  index: "by_workerId" | "by_machineId",
  id: string,
  budget: Budget,
): Promise<boolean> {
  for (;;) {
    const sessions =
      index === "by_workerId"
        ? await ctx.db
            .query("chatSessions")
            .withIndex("by_workerId", (q) => q.eq("workerId", id))
            .take(16)
        : await ctx.db
            .query("chatSessions")
            .withIndex("by_machineId", (q) => q.eq("machineId", id))
            .take(16);
    if (sessions.length === 0) return true;
    for (const session of sessions) {
      if (!(await purgeSession(ctx, session.chatSessionId, budget))) return false;
    }
  }
}

/** A worker's jobs are paused (their runs' statuses frozen) before its sessions go. */
async function purgeWorker(ctx: MutationCtx, workerId: string, budget: Budget): Promise<boolean> {
  if (!(await pauseJobs(ctx, workerId, budget))) return false;
  return await purgeSessionsOf(ctx, "by_workerId", workerId, budget);
}

async function purgeMachine(ctx: MutationCtx, machineId: string, budget: Budget): Promise<boolean> {
  for (;;) {
    const workers = await ctx.db
      .query("workers")
      .withIndex("by_machineId", (q) => q.eq("machineId", machineId))
      .take(16);
    if (workers.length === 0) break;
    for (const worker of workers) {
      if (!(await purgeWorker(ctx, worker.workerId, budget)) || budget.left <= 0) return false;
      await ctx.db.delete(worker._id);
      budget.left--;
    }
  }
  const db = ctx.db;
  const tokens = (n: number) =>
    db.query("workerTokens").withIndex("by_machineId", (q) => q.eq("machineId", machineId)).take(n);
  const commands = (n: number) =>
    db.query("commands").withIndex("by_machineId", (q) => q.eq("machineId", machineId)).take(n);
  if (!(await deleteEach(ctx, tokens, budget)) || !(await deleteEach(ctx, commands, budget))) {
    return false;
  }
  return await purgeSessionsOf(ctx, "by_machineId", machineId, budget);
}

/** Delete up to `budget` rows below `target`; whether everything is gone. */
export async function purge(ctx: MutationCtx, target: PurgeTarget, budget: number): Promise<boolean> {
  const left = budgetOf(budget);
  switch (target.kind) {
    case "machine":
      return await purgeMachine(ctx, target.id, left);
    case "worker":
      return await purgeWorker(ctx, target.id, left);
    case "session":
      return await purgeSession(ctx, target.id, left);
    case "job":
      return await deleteRuns(ctx, target.id, left.left);
  }
}

/** Purge what fits in this mutation and schedule the rest. */
export async function deleteBelow(ctx: MutationCtx, target: PurgeTarget): Promise<void> {
  if (!(await purge(ctx, target, INLINE_BUDGET))) {
    await ctx.scheduler.runAfter(0, internal.cleanup.purge, { target });
  }
}
