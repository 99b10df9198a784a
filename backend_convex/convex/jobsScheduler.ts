/**
 * Starting due runs, by two schedulers that may run side by side:
 *
 * - the deployment's own cron (crons.ts) calls `runDue` every minute and
 *   computes each job's next due time itself (lib/jobs.ts `nextDue`);
 * - the scheduler in `orchestrator serve` asks `listDue` for the due jobs and
 *   calls `startRunAt` with the slot it saw and the next due time it computed
 *   in Python.
 *
 * Both go through `startSlot`, a compare-and-set inside one mutation, and
 * Convex runs mutations serializably, so however many schedulers look at the
 * same slot (or retry after a lost reply), exactly one run is created for it.
 */
import { internalMutation } from "./_generated/server";
import { internal } from "./_generated/api";
import { getDocumentSize, v } from "convex/values";
import type { Doc } from "./_generated/dataModel";
import type { QueryCtx } from "./_generated/server";
import { serverMutation, serverQuery } from "./lib/functions";
import { jobById, nextDue, runRecord, startSlot, unreadableSchedule } from "./lib/jobs";
import { CRON_DUE_JOBS, MAX_DUE_JOBS } from "./lib/limits";
import { cutPage, PAGE_BYTES } from "./lib/paging";
import { jobRecord } from "./lib/records";
import { jobRecord as jobValidator, jobRunRecord as runValidator } from "./lib/validators";

/**
 * Enabled jobs whose next run is at or before `now`, soonest first: at most
 * `count`, and only as many as fit PAGE_BYTES (a prompt may be 100,000
 * characters), the first always. Whatever is cut stays due for the next look.
 */
async function duePage(ctx: QueryCtx, now: number, count: number) {
  const due = ctx.db
    .query("jobs")
    // gte(-Infinity) leaves out jobs without a next run (an absent field sorts first).
    .withIndex("by_enabled_and_nextRunAt", (q) =>
      q.eq("enabled", true).gte("nextRunAt", Number.NEGATIVE_INFINITY).lte("nextRunAt", now),
    );
  // Starting a run reads the job and writes its prompt again as the run's message.
  return await cutPage(due, count, (job: Doc<"jobs">) => 2 * getDocumentSize(job), PAGE_BYTES);
}

/** Enabled jobs whose next run is at or before `now`, soonest first; as many as fit one page (duePage). */
export const listDue = serverQuery({
  args: { now: v.number(), limit: v.number() },
  returns: v.array(jobValidator),
  handler: async (ctx, { now, limit }) => {
    const count = Math.max(0, Math.min(Math.floor(limit), MAX_DUE_JOBS));
    if (count === 0) return [];
    const { items } = await duePage(ctx, now, count);
    return items.map(jobRecord);
  },
});

/**
 * Run the job's slot `scheduledFor` once and move the job to `nextRunAt`, only
 * if the job is enabled and still due at exactly that slot; otherwise null and
 * nothing is written. A run whose session cannot start is recorded as failed
 * and the job still moves on; with no next run (the schedule never comes due
 * again) the job is disabled.
 */
export const startRunAt = serverMutation({
  args: { jobId: v.string(), scheduledFor: v.number(), nextRunAt: v.union(v.number(), v.null()) },
  returns: v.union(runValidator, v.null()),
  handler: async (ctx, { jobId, scheduledFor, nextRunAt }) => {
    const run = await startSlot(ctx, await jobById(ctx, jobId), scheduledFor, nextRunAt);
    return run === null ? null : await runRecord(ctx, run);
  },
});

/**
 * The deployment's own scheduler, every minute (crons.ts): start one run for
 * each job due now, soonest first, and move it to its first due time after
 * now, so missed slots collapse into that one run. A job whose stored
 * schedule cannot be read is paused with a reason. A batch cut by count or
 * by size (duePage) schedules the next at once; every job it handles leaves
 * the due range, so the chain ends and no job is started twice.
 */
export const runDue = internalMutation({
  args: {},
  returns: v.number(),
  handler: async (ctx) => {
    const now = Date.now();
    const { items: due, hasMore } = await duePage(ctx, now, CRON_DUE_JOBS);
    let started = 0;
    for (const job of due) {
      const following = nextDue(job.cron, job.timezone, now);
      if (following === "unreadable") {
        await ctx.db.patch(job._id, {
          enabled: false,
          nextRunAt: undefined,
          pausedReason: unreadableSchedule(job.cron, job.timezone),
        });
        continue;
      }
      if ((await startSlot(ctx, job, job.nextRunAt!, following)) !== null) started++;
    }
    if (hasMore) await ctx.scheduler.runAfter(0, internal.jobsScheduler.runDue, {});
    return started;
  },
});
