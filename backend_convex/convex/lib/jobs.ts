/**
 * Scheduled jobs: lookups, the rules their owner's calls share, starting a
 * run, and reading a run's status from the chat it produced.
 *
 * The web server computes `nextRunAt` in Python (orchestrator.application.jobs)
 * when it saves a job and when its scheduler starts a run; the deployment's own
 * cron (jobsScheduler.runDue) computes it with `nextDue` below, with the same
 * semantics. Both start a slot through `startSlot`, a compare-and-set.
 * A run is a user message with the job's prompt in a chat session of the
 * job's worker; the machine answers it like any other message, so a run's
 * outcome is its reply's.
 */
import type { Doc, Id } from "../_generated/dataModel";
import type { MutationCtx, QueryCtx } from "../_generated/server";
import { ConvexError, getDocumentSize, type Value } from "convex/values";
import { CronExpressionParser } from "cron-parser";
import { byPublicId, liveSession, liveWorker, messageById, ownedWorker, reachable } from "./access";
import { type ErrorData } from "./errors";
import { newId } from "./ids";
import { budgetOf, eachRow, spend, type Budget } from "./budget";
import { PAGE_BYTES } from "./paging";
import { checkModel, checkRunnable, MAX_TITLE_LENGTH, pyStrip } from "./rules";
import { trackTurn } from "./turns";
import type { JobDraft, JobRunRecord, JobRunStatus } from "./validators";

export const NO_JOB = "No such job.";
export const WORKER_REMOVED = "Its worker was removed.";
export const NO_WORKER_FOR_JOB = "This job has no worker. Edit it and pick one.";
export const JUST_STARTED = "This job has just been started. Try again in a moment.";
export const SESSION_GONE = "The run's chat session no longer exists.";

export async function jobById(ctx: QueryCtx, jobId: string): Promise<Doc<"jobs"> | null> {
  return await byPublicId(ctx, "jobs", jobId);
}

/** One of the user's jobs; someone else's is "not found". */
export async function ownedJob(ctx: QueryCtx, userId: string, jobId: string): Promise<Doc<"jobs">> {
  return reachable(await jobById(ctx, jobId), (job) => job.userId === userId, NO_JOB);
}

/** The worker a job of `userId` may run on with `model`: the user's, approved, offering it. */
export async function jobWorker(
  ctx: QueryCtx,
  userId: string,
  workerId: string,
  model: string,
): Promise<Doc<"workers">> {
  const worker = await ownedWorker(ctx, userId, workerId);
  checkModel(worker.status, worker.models, model);
  return worker;
}

/** The draft's fields as stored (the web server's Python rules checked and cleaned them). */
export function draftFields(draft: JobDraft) {
  return {
    workerId: draft.workerId,
    name: draft.name,
    model: draft.model,
    prompt: draft.prompt,
    cron: draft.cron,
    timezone: draft.timezone,
    sessionMode: draft.sessionMode,
  };
}

/** A job is enabled only with a next run: `enabled` and `nextRunAt` as stored. */
export function schedule(enabled: boolean, nextRunAt: number | null) {
  const on = enabled && nextRunAt !== null;
  return { enabled: on, nextRunAt: on ? nextRunAt : undefined };
}

/**
 * Run the job's slot `scheduledFor` once and move the job to `nextRunAt`, only
 * if the job is enabled and still due at exactly that slot; otherwise null and
 * nothing is written. Mutations run serializably, so however many schedulers
 * (web servers, the deployment's cron) try the same slot, one run is made.
 * Also null, with the job moved on all the same, if "Run now" took this very
 * millisecond. With no next run the job is disabled. A job whose worker was
 * removed is paused instead, as the worker's purge would (pauseJobs).
 */
export async function startSlot(
  ctx: MutationCtx,
  job: Doc<"jobs"> | null,
  scheduledFor: number,
  nextRunAt: number | null,
): Promise<Doc<"jobRuns"> | null> {
  if (job === null || !job.enabled || job.nextRunAt !== scheduledFor) return null;
  if (job.workerId !== undefined && (await liveWorker(ctx, job.workerId)) === null) {
    // Its worker was removed and the purge has not reached it yet: pause it now. Its
    // worker stays set so the purge still freezes its runs' statuses (pauseJobs).
    await ctx.db.patch(job._id, { enabled: false, nextRunAt: undefined, pausedReason: WORKER_REMOVED });
    return null;
  }
  const run = await startRun(ctx, job, scheduledFor);
  await ctx.db.patch(job._id, schedule(true, nextRunAt));
  return run;
}

/** Why the deployment's cron paused a job whose stored schedule it could not read. */
export function unreadableSchedule(cron: string, timezone: string): string {
  return `Its schedule ${JSON.stringify(cron)} in time zone ${timezone} could not be read. Edit the job and save its schedule again.`;
}

/**
 * The first due time strictly after `after` (ms) of a 5-field cron in the IANA
 * time zone `timezone` (`next_due` in Python): null if it never comes due,
 * "unreadable" if the schedule or the zone cannot be parsed.
 */
export function nextDue(cron: string, timezone: string, after: number): number | null | "unreadable" {
  const fields = cron.trim().split(/\s+/);
  if (fields.length !== 5) return "unreadable";
  // Like Python, count from the start of the minute: the next slot is after it.
  const start = Math.floor(after / 60_000) * 60_000;
  let expression;
  try {
    expression = CronExpressionParser.parse(fields.join(" "), { currentDate: new Date(start), tz: timezone });
  } catch {
    return "unreadable";
  }
  try {
    let found = expression.next().getTime();
    // A local time the clock skips (02:30 when it jumps 02:00 -> 03:00) is moved past the
    // gap by cron-parser; like Python's cronsim, run it when the clock jumps instead.
    if (!expression.includesDate(new Date(found))) found = clockJump(timezone, found);
    return found > start ? found : null;
  } catch {
    return null; // e.g. no matching date within the library's search horizon
  }
}

/** The minute ``timezone``'s clock last jumped before ``at`` (within 3 hours), else ``at``. */
function clockJump(timezone: string, at: number): number {
  const offset = (t: number) => utcOffsetMinutes(timezone, t);
  let [before, after] = [at - 3 * 3_600_000, at];
  if (offset(before) === offset(after)) return at;
  while (after - before > 60_000) {
    const middle = Math.floor((before + after) / 120_000) * 60_000;
    if (offset(middle) === offset(at)) after = middle;
    else before = middle;
  }
  return after;
}

/** How many minutes ``timezone``'s clock is ahead of UTC at ``at``. */
function utcOffsetMinutes(timezone: string, at: number): number {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone: timezone,
    hourCycle: "h23",
    year: "numeric",
    month: "numeric",
    day: "numeric",
    hour: "numeric",
    minute: "numeric",
  }).formatToParts(new Date(at));
  const field = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  const local = Date.UTC(field("year"), field("month") - 1, field("day"), field("hour"), field("minute"));
  return (local - Math.floor(at / 60_000) * 60_000) / 60_000;
}

/**
 * Bytes of jobs (and of the messages their open runs point at) one mutation
 * reads while pausing a removed worker's jobs: a prompt may be 100,000
 * characters, so a count alone does not bound it. What does not fit is paused
 * by the worker's scheduled purge (lib/cascade.ts), before its sessions go.
 */
export const PAUSE_BYTES = PAGE_BYTES / 2;
/** Jobs and runs the deleting mutation itself pauses and freezes at most. */
const PAUSE_ROWS = 512;

/** Store the status each open run of the job shows now, before its messages go; whether all are stored. */
async function freezeRuns(ctx: MutationCtx, jobId: string, budget: Budget): Promise<boolean> {
  const open = (n: number) =>
    ctx.db
      .query("jobRuns")
      .withIndex("by_jobId_and_status", (q) => q.eq("jobId", jobId).eq("status", undefined))
      .take(n);
  return await eachRow(open, budget, async (run) => {
    const { status, error, read } = await outcome(ctx, run.messageId);
    spend(budget, read);
    await ctx.db.patch(run._id, { status, error: error ?? undefined });
  });
}

/**
 * Pause the jobs of a removed worker with a reason, each after freezing its
 * runs' statuses, while `budget` lasts; whether none is left. Each pause takes
 * the job out of the worker's index, so a later call carries on where this
 * one stopped.
 */
export async function pauseJobs(ctx: MutationCtx, workerId: string, budget: Budget): Promise<boolean> {
  // Never more than PAUSE_BYTES here, whatever the caller's budget: the rest goes to a later batch.
  const cap = Math.min(budget.bytes, PAUSE_BYTES);
  const pausing = { left: budget.left, bytes: cap };
  const jobs = (n: number) =>
    ctx.db
      .query("jobs")
      .withIndex("by_workerId", (q) => q.eq("workerId", workerId))
      .take(n);
  const done = await eachRow(jobs, pausing, async (job) => {
    if (await freezeRuns(ctx, job.jobId, pausing)) await pauseJob(ctx, job._id);
  });
  budget.left = pausing.left;
  spend(budget, cap - pausing.bytes);
  return done;
}

async function pauseJob(ctx: MutationCtx, id: Id<"jobs">): Promise<void> {
  await ctx.db.patch(id, {
    enabled: false,
    nextRunAt: undefined,
    workerId: undefined,
    chatSessionId: undefined,
    pausedReason: WORKER_REMOVED,
  });
}

/**
 * Before a worker is deleted: pause what fits of its jobs (pauseJobs); the
 * worker's purge (lib/cascade.ts) pauses the rest before its sessions go.
 */
export async function pauseJobsOfWorker(ctx: MutationCtx, workerId: string): Promise<void> {
  await pauseJobs(ctx, workerId, budgetOf(PAUSE_ROWS, PAUSE_BYTES));
}

/** Pause what fits of the jobs of every worker of a machine that is being deleted; its purge does the rest. */
export async function pauseJobsOfMachine(ctx: MutationCtx, machineId: string, maxWorkers: number): Promise<void> {
  const workers = await ctx.db
    .query("workers")
    .withIndex("by_machineId", (q) => q.eq("machineId", machineId))
    .take(maxWorkers);
  const budget = budgetOf(PAUSE_ROWS, PAUSE_BYTES);
  for (const worker of workers) {
    if (!(await pauseJobs(ctx, worker.workerId, budget))) return;
  }
}

/** The session this run writes to (made if needed), checked before anything is written. */
async function runTarget(ctx: MutationCtx, job: Doc<"jobs">) {
  const worker = await jobWorker(ctx, job.userId, job.workerId!, job.model);
  checkRunnable(worker.problem);
  let session: Doc<"chatSessions"> | null = null;
  if (job.sessionMode === "same_session" && job.chatSessionId !== undefined) {
    session = await liveSession(ctx, job.chatSessionId);
    if (session !== null && (session.status === "terminated" || session.workerId !== worker.workerId)) {
      session = null;
    }
  }
  return { worker, session };
}

/**
 * Record the run of slot `scheduledFor` and send the job's prompt as a user
 * message to a new session or the job's session; null if that slot already
 * ran. If the session cannot start (the worker waits for approval, no longer
 * offers the model, ...) the run is recorded as failed with the sentence.
 */
export async function startRun(
  ctx: MutationCtx,
  job: Doc<"jobs">,
  scheduledFor: number,
  now: number = Date.now(),
): Promise<Doc<"jobRuns"> | null> {
  const earlier = await ctx.db
    .query("jobRuns")
    .withIndex("by_jobId_and_scheduledFor", (q) => q.eq("jobId", job.jobId).eq("scheduledFor", scheduledFor))
    .first();
  if (earlier !== null) return null;
  const run = {
    runId: await newId(ctx, "job_run"),
    jobId: job.jobId,
    userId: job.userId,
    scheduledFor,
    createdAt: now,
  };
  let target;
  try {
    target = await runTarget(ctx, job);
  } catch (error) {
    if (!(error instanceof ConvexError)) throw error;
    const { message } = error.data as ErrorData;
    const id = await ctx.db.insert("jobRuns", { ...run, status: "failed", finishedAt: now, error: message });
    return (await ctx.db.get(id))!;
  }
  const { worker } = target;
  let session = target.session;
  if (session === null) {
    const created = await ctx.db.insert("chatSessions", {
      chatSessionId: await newId(ctx, "chat_session"),
      workerId: worker.workerId,
      machineId: worker.machineId,
      userId: job.userId,
      model: job.model,
      status: "active",
      createdAt: now,
      lastActivity: now,
      lastSequence: 0,
      // Named after its job (bounded like any title); the agent's title does not replace it.
      title: pyStrip(job.name).slice(0, MAX_TITLE_LENGTH) || undefined,
    });
    session = (await ctx.db.get(created))!;
    if (job.sessionMode === "same_session") await ctx.db.patch(job._id, { chatSessionId: session.chatSessionId });
  } else {
    await ctx.db.patch(session._id, { status: "active", lastActivity: now });
  }
  const messageId = await newId(ctx, "message");
  const asked = {
    messageId,
    chatSessionId: session.chatSessionId,
    machineId: worker.machineId,
    role: "user" as const,
    status: "pending" as const,
    timestamp: now,
  };
  await ctx.db.insert("chatMessages", { ...asked, content: job.prompt, abortRequested: false });
  await trackTurn(ctx, asked);
  const id = await ctx.db.insert("jobRuns", { ...run, chatSessionId: session.chatSessionId, messageId });
  return (await ctx.db.get(id))!;
}

/**
 * A run's status from its user message and its reply (`run_outcome` in
 * Python): the reply decides once it exists (streaming: running; completed:
 * done; failed, interrupted or aborted: failed with its error); before that
 * the user message does (pending: pending; processing: running).
 */
async function outcome(
  ctx: QueryCtx,
  messageId: string | undefined,
): Promise<{ status: JobRunStatus; error: string | null; read: number }> {
  const message = messageId === undefined ? null : await messageById(ctx, messageId);
  const reply =
    messageId === undefined
      ? null
      : await ctx.db
          .query("chatMessages")
          .withIndex("by_replyTo", (q) => q.eq("replyTo", messageId))
          .order("desc")
          .first();
  const read = [message, reply].reduce(
    (sum, doc) => sum + (doc === null ? 0 : getDocumentSize(doc as unknown as Record<string, Value>)),
    0,
  );
  return { ...outcomeOf(message, reply), read };
}

function outcomeOf(
  message: Doc<"chatMessages"> | null,
  reply: Doc<"chatMessages"> | null,
): { status: JobRunStatus; error: string | null } {
  if (reply !== null) {
    if (reply.status === "streaming") return { status: "running", error: null };
    if (reply.status === "completed") return { status: "done", error: null };
    return { status: "failed", error: reply.error || `The reply was ${reply.status}.` };
  }
  if (message === null) return { status: "failed", error: SESSION_GONE };
  if (message.status === "pending") return { status: "pending", error: null };
  if (message.status === "processing") return { status: "running", error: null };
  return { status: "done", error: null };
}

/** A run as its owner sees it: its stored status, or else its messages'. */
export async function runRecord(ctx: QueryCtx, run: Doc<"jobRuns">): Promise<JobRunRecord> {
  let status = run.status;
  let error = run.error ?? null;
  if (status === undefined) {
    // Messages of a deleted worker linger until purged: they no longer count.
    const live = run.chatSessionId !== undefined && (await liveSession(ctx, run.chatSessionId)) !== null;
    if (live) ({ status, error } = await outcome(ctx, run.messageId));
    else ({ status, error } = { status: "failed", error: SESSION_GONE });
  }
  return {
    runId: run.runId,
    jobId: run.jobId,
    scheduledFor: run.scheduledFor,
    createdAt: run.createdAt,
    status,
    chatSessionId: run.chatSessionId ?? null,
    messageId: run.messageId ?? null,
    finishedAt: run.finishedAt ?? null,
    error,
  };
}

/** Delete up to `budget` runs of a job; whether none are left. */
export async function deleteRuns(ctx: MutationCtx, jobId: string, budget: number): Promise<boolean> {
  const runs = await ctx.db
    .query("jobRuns")
    .withIndex("by_jobId", (q) => q.eq("jobId", jobId))
    .take(budget + 1);
  for (const run of runs.slice(0, budget)) await ctx.db.delete(run._id);
  return runs.length <= budget;
}
