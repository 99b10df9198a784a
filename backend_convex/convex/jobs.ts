/**
 * Scheduled jobs as their owner sees them, through the web server: create,
 * edit, pause and resume, delete, read with their run history, and "Run now".
 * Another user's job is "not found".
 *
 * The web server checks the cron expression, time zone and minimum interval
 * in Python and passes the resulting `nextRunAt` (null: not scheduled); the
 * due runs are started by its scheduler through jobsScheduler.ts.
 */
import type { Doc } from "./_generated/dataModel";
import type { MutationCtx } from "./_generated/server";
import { v } from "convex/values";
import { owner, serverMutation, serverQuery } from "./lib/functions";
import { INLINE_BUDGET } from "./lib/cascade";
import { internal } from "./_generated/api";
import { ofUser } from "./lib/access";
import { fail } from "./lib/errors";
import { newId } from "./lib/ids";
import {
  deleteRuns,
  draftFields,
  JUST_STARTED,
  jobWorker,
  NO_WORKER_FOR_JOB,
  ownedJob,
  runRecord,
  schedule,
  startRun,
} from "./lib/jobs";
import { MAX_JOB_RUNS } from "./lib/limits";
import { cutPage, pageLimit, pageStart, textSize } from "./lib/paging";
import { jobRecord, patched } from "./lib/records";
import {
  jobDraft,
  jobRecord as jobValidator,
  jobRunRecord as runValidator,
} from "./lib/validators";

const ownerOfJob = { ...owner, jobId: v.string() };
const nextRun = v.union(v.number(), v.null());

async function save(ctx: MutationCtx, job: Doc<"jobs">, changes: Partial<Doc<"jobs">>) {
  return jobRecord(await patched(ctx, job, changes));
}

/** Store a job for one of the user's approved workers, with one of its models. */
export const create = serverMutation({
  args: { ...owner, draft: jobDraft, nextRunAt: nextRun },
  returns: jobValidator,
  handler: async (ctx, { userId, draft, nextRunAt }) => {
    const fields = draftFields(draft);
    await jobWorker(ctx, userId, fields.workerId, fields.model);
    const id = await ctx.db.insert("jobs", {
      jobId: await newId(ctx, "job"),
      userId,
      ...fields,
      ...schedule(draft.enabled, nextRunAt),
      createdAt: Date.now(),
    });
    return jobRecord((await ctx.db.get(id))!);
  },
});

/** Replace a job's settings and schedule; a pause reason is cleared. */
export const update = serverMutation({
  args: { ...ownerOfJob, draft: jobDraft, nextRunAt: nextRun },
  returns: jobValidator,
  handler: async (ctx, { userId, jobId, draft, nextRunAt }) => {
    const job = await ownedJob(ctx, userId, jobId);
    const fields = draftFields(draft);
    await jobWorker(ctx, userId, fields.workerId, fields.model);
    // A session of another worker (or model) is no place for the next same-session run.
    const keepSession = fields.workerId === job.workerId && fields.model === job.model;
    return await save(ctx, job, {
      ...fields,
      ...schedule(draft.enabled, nextRunAt),
      chatSessionId: keepSession ? job.chatSessionId : undefined,
      pausedReason: undefined,
    });
  },
});

/** Pause (no next run) or resume a job at `nextRunAt`; either clears a pause reason. */
export const setEnabled = serverMutation({
  args: { ...ownerOfJob, enabled: v.boolean(), nextRunAt: nextRun },
  returns: jobValidator,
  handler: async (ctx, { userId, jobId, enabled, nextRunAt }) => {
    const job = await ownedJob(ctx, userId, jobId);
    if (enabled && job.workerId === undefined) fail("Conflict", NO_WORKER_FOR_JOB);
    return await save(ctx, job, { ...schedule(enabled, nextRunAt), pausedReason: undefined });
  },
});

/** Delete a job and its run history; the chat sessions its runs made stay. */
export const remove = serverMutation({
  args: ownerOfJob,
  returns: v.null(),
  handler: async (ctx, { userId, jobId }) => {
    const job = await ownedJob(ctx, userId, jobId);
    await ctx.db.delete(job._id);
    if (!(await deleteRuns(ctx, jobId, INLINE_BUDGET))) {
      await ctx.scheduler.runAfter(0, internal.cleanup.purge, { target: { kind: "job", id: jobId } });
    }
    return null;
  },
});

/** One of the user's jobs. */
export const get = serverQuery({
  args: ownerOfJob,
  returns: jobValidator,
  handler: async (ctx, { userId, jobId }) => {
    return jobRecord(await ownedJob(ctx, userId, jobId));
  },
});

/** A page of the user's jobs, oldest first, after the job the last page ended with. */
export const listPage = serverQuery({
  args: { ...owner, afterJobId: v.optional(v.string()), limit: v.number() },
  returns: v.object({ jobs: v.array(jobValidator), hasMore: v.boolean() }),
  handler: async (ctx, { userId, afterJobId, limit }) => {
    const after = (await pageStart(ctx, "jobs", afterJobId, (last) => last.userId === userId))?._creationTime;
    const oldestFirst = ofUser(ctx, "jobs", userId, after);
    const { items, hasMore } = await cutPage(oldestFirst, pageLimit(limit), (job) => textSize(job.prompt, job.name));
    return { jobs: items.map(jobRecord), hasMore };
  },
});

/** A job's newest `limit` runs (at most MAX_JOB_RUNS), newest first, each with its reply's status. */
export const listRuns = serverQuery({
  args: { ...ownerOfJob, limit: v.number() },
  returns: v.array(runValidator),
  handler: async (ctx, { userId, jobId, limit }) => {
    await ownedJob(ctx, userId, jobId);
    const count = Math.max(0, Math.min(Math.floor(limit), MAX_JOB_RUNS));
    if (count === 0) return [];
    const runs = await ctx.db
      .query("jobRuns")
      .withIndex("by_jobId", (q) => q.eq("jobId", jobId))
      .order("desc")
      .take(count);
    return await Promise.all(runs.map((run) => runRecord(ctx, run)));
  },
});

/** Start a run at once ("Run now"); the schedule stays as it is. */
export const runNow = serverMutation({
  args: ownerOfJob,
  returns: runValidator,
  handler: async (ctx, { userId, jobId }) => {
    const job = await ownedJob(ctx, userId, jobId);
    if (job.workerId === undefined) fail("Conflict", NO_WORKER_FOR_JOB);
    const now = Date.now();
    const run = await startRun(ctx, job, now, now);
    if (run === null) fail("Conflict", JUST_STARTED);
    return await runRecord(ctx, run);
  },
});
