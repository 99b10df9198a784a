/**
 * What the scheduler in `orchestrator serve` asks of the deployment: the jobs
 * that are due, and starting one due slot exactly once.
 *
 * The cron arithmetic stays in Python (one implementation for every backend);
 * the web server passes the slot it saw and the next due time it computed.
 * `startRun` is a compare-and-set inside one mutation, and Convex runs
 * mutations serializably, so however many web servers look at the same slot
 * (or retry after a lost reply), exactly one run is created for it.
 */
import { mutation, query } from "./_generated/server";
import { v } from "convex/values";
import { requireServer } from "./lib/auth";
import { jobById, runRecord, schedule, startRun } from "./lib/jobs";
import { MAX_DUE_JOBS } from "./lib/limits";
import { jobRecord } from "./lib/records";
import { jobRecord as jobValidator, jobRunRecord as runValidator, serverCaller } from "./lib/validators";

/** Enabled jobs whose next run is at or before `now`, soonest first. */
export const listDue = query({
  args: { ...serverCaller, now: v.number(), limit: v.number() },
  returns: v.array(jobValidator),
  handler: async (ctx, { serverSecret, now, limit }) => {
    requireServer(serverSecret);
    const count = Math.max(0, Math.min(Math.floor(limit), MAX_DUE_JOBS));
    if (count === 0) return [];
    const due = await ctx.db
      .query("jobs")
      // gte(-Infinity) leaves out jobs without a next run (an absent field sorts first).
      .withIndex("by_enabled_and_nextRunAt", (q) =>
        q.eq("enabled", true).gte("nextRunAt", Number.NEGATIVE_INFINITY).lte("nextRunAt", now),
      )
      .take(count);
    return due.map(jobRecord);
  },
});

/**
 * Run the job's slot `scheduledFor` once and move the job to `nextRunAt`, only
 * if the job is enabled and still due at exactly that slot; otherwise null and
 * nothing is written. A run whose session cannot start is recorded as failed
 * and the job still moves on; with no next run (the schedule never comes due
 * again) the job is disabled.
 */
export const startRunAt = mutation({
  args: { ...serverCaller, jobId: v.string(), scheduledFor: v.number(), nextRunAt: v.union(v.number(), v.null()) },
  returns: v.union(runValidator, v.null()),
  handler: async (ctx, { serverSecret, jobId, scheduledFor, nextRunAt }) => {
    requireServer(serverSecret);
    const job = await jobById(ctx, jobId);
    if (job === null || !job.enabled || job.nextRunAt !== scheduledFor) return null;
    // null if "Run now" took this very millisecond; the job moves on all the same.
    const run = await startRun(ctx, job, scheduledFor);
    await ctx.db.patch(job._id, schedule(true, nextRunAt));
    return run === null ? null : await runRecord(ctx, run);
  },
});
