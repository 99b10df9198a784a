/** Scheduled jobs: ownership, a slot runs once, run status from the chat, pausing when the worker goes. */
import { afterEach, expect, test, vi } from "vitest";
import { api, internal } from "../convex/_generated/api";
import { NO_JOB, NO_WORKER_FOR_JOB, WORKER_REMOVED } from "../convex/lib/jobs";
import type { SessionMode } from "../convex/lib/validators";
import { longPromptJobs, MODELS, newChat, newDeployment, newUser, refused, SECRET, type Deployment } from "./setup";

const MINUTE = 60_000;
const T0 = Date.UTC(2030, 0, 1, 9, 0);

function draft(workerId: string, sessionMode: SessionMode = "new_session", model = MODELS[0]) {
  return { workerId, name: "Daily report", model, prompt: "Summarize the day.", cron: "0 9 * * *", timezone: "UTC", sessionMode, enabled: true };
}

async function newJob(t: Deployment, sessionMode: SessionMode = "new_session") {
  const chat = await newChat(t);
  const job = await t.mutation(api.jobs.create, { ...chat.owner, draft: draft(chat.worker.workerId, sessionMode), nextRunAt: T0 });
  return { ...chat, job, ofJob: { ...chat.owner, jobId: job.jobId } };
}

const scheduler = (jobId: string, scheduledFor: number, nextRunAt: number | null) => ({
  serverSecret: SECRET,
  jobId,
  scheduledFor,
  nextRunAt,
});

test("a job belongs to its owner and needs an approved worker offering its model", async () => {
  const t = newDeployment();
  const { job, owner, worker, ofJob } = await newJob(t);
  expect(job).toMatchObject({ enabled: true, nextRunAt: T0, workerId: worker.workerId, chatSessionId: null, pausedReason: null });
  const bob = await newUser(t, "bob");
  await refused(t.query(api.jobs.get, { ...ofJob, userId: bob }), "NotFound", NO_JOB);
  await refused(t.mutation(api.jobs.runNow, { ...ofJob, userId: bob }), "NotFound", NO_JOB);
  await refused(
    t.mutation(api.jobs.create, { serverSecret: SECRET, userId: bob, draft: draft(worker.workerId), nextRunAt: T0 }),
    "NotFound",
    "No such worker.",
  );
  await refused(
    t.mutation(api.jobs.create, { ...owner, draft: draft(worker.workerId, "new_session", "fake/none"), nextRunAt: T0 }),
    "InvalidInput",
    `The worker does not offer model fake/none. Pick one of: ${MODELS.join(", ")}.`,
  );
  await refused(t.query(api.jobs.get, { ...ofJob, serverSecret: "wrong" }), "AuthenticationFailed");
  // Disabled (or never due) means no next run.
  const paused = await t.mutation(api.jobs.setEnabled, { ...ofJob, enabled: false, nextRunAt: T0 });
  expect([paused.enabled, paused.nextRunAt]).toEqual([false, null]);
  expect((await t.query(api.jobs.listPage, { ...owner, limit: 50 })).jobs.map((j) => j.jobId)).toEqual([job.jobId]);
});

test("the scheduler starts a slot exactly once and moves the job on", async () => {
  const t = newDeployment();
  const { job, owner, ofJob, token } = await newJob(t);
  const due = (now: number) => t.query(api.jobsScheduler.listDue, { serverSecret: SECRET, now, limit: 10 });
  expect(await due(T0 - 1)).toEqual([]);
  expect((await due(T0)).map((j) => j.jobId)).toEqual([job.jobId]);
  const run = await t.mutation(api.jobsScheduler.startRunAt, scheduler(job.jobId, T0, T0 + 1440 * MINUTE));
  expect(run).toMatchObject({ status: "pending", scheduledFor: T0, error: null, finishedAt: null });
  // A second scheduler that saw the same slot gets nothing, and writes nothing.
  expect(await t.mutation(api.jobsScheduler.startRunAt, scheduler(job.jobId, T0, T0 + 5 * MINUTE))).toBeNull();
  expect((await t.query(api.jobs.get, ofJob)).nextRunAt).toBe(T0 + 1440 * MINUTE);
  expect(await due(T0 + MINUTE)).toEqual([]);
  // The prompt went as a user message to a new session of the worker; the reply decides the status.
  const messages = (await t.query(api.chat.listMessagesPage, { ...owner, chatSessionId: run!.chatSessionId!, limit: 50 })).messages;
  expect(messages.map((m) => [m.role, m.content, m.status])).toEqual([["user", "Summarize the day.", "pending"]]);
  const reply = await t.mutation(api.chatMachine.claimMessage, { ...token, messageId: run!.messageId! });
  const status = async () => (await t.query(api.jobs.listRuns, { ...ofJob, limit: 50 }))[0];
  expect((await status()).status).toBe("running");
  await t.mutation(api.chatMachine.endReply, { ...token, messageId: reply.messageId, status: "failed", reason: "boom" });
  expect(await status()).toMatchObject({ status: "failed", error: "boom" });
});

test("same_session runs share a session until it ends; run now leaves the schedule alone", async () => {
  const t = newDeployment();
  const { job, owner, ofJob, token } = await newJob(t, "same_session");
  const first = await t.mutation(api.jobs.runNow, ofJob);
  const answered = await t.mutation(api.chatMachine.claimMessage, { ...token, messageId: first.messageId! });
  await t.mutation(api.chatMachine.completeMessage, { ...token, messageId: answered.messageId, content: "ok" });
  const second = await t.mutation(api.jobsScheduler.startRunAt, scheduler(job.jobId, T0, null));
  expect(second!.chatSessionId).toBe(first.chatSessionId);
  const after = await t.query(api.jobs.get, ofJob);
  expect(after).toMatchObject({ chatSessionId: first.chatSessionId, enabled: false, nextRunAt: null });
  await t.mutation(api.chat.endSession, { ...owner, chatSessionId: first.chatSessionId! });
  const third = await t.mutation(api.jobs.runNow, ofJob);
  expect(third.chatSessionId).not.toBe(first.chatSessionId);
  const runs = await t.query(api.jobs.listRuns, { ...ofJob, limit: 50 });
  expect(runs.map((r) => [r.runId, r.status])).toEqual([
    [third.runId, "pending"],
    [second!.runId, "pending"],
    [first.runId, "done"],
  ]);
  expect((await t.query(api.jobs.get, ofJob)).chatSessionId).toBe(third.chatSessionId);
});

test("a run whose session cannot start fails with the sentence, and the job still moves on", async () => {
  const t = newDeployment();
  const { job, ofJob, token, worker } = await newJob(t);
  await t.mutation(api.workers.updateModels, { ...token, workerId: worker.workerId, models: ["fake/other"] });
  const run = await t.mutation(api.jobsScheduler.startRunAt, scheduler(job.jobId, T0, T0 + MINUTE));
  expect(run).toMatchObject({ status: "failed", chatSessionId: null, messageId: null });
  expect(run!.error).toBe("The worker does not offer model fake/small. Pick one of: fake/other.");
  expect(run!.finishedAt).not.toBeNull();
  expect((await t.query(api.jobs.get, ofJob)).nextRunAt).toBe(T0 + MINUTE);
});

test("removing the worker pauses its jobs with a reason and keeps the run history", async () => {
  const t = newDeployment();
  const { job, owner, ofJob, token, worker } = await newJob(t);
  const run = await t.mutation(api.jobsScheduler.startRunAt, scheduler(job.jobId, T0, T0 + MINUTE));
  const reply = await t.mutation(api.chatMachine.claimMessage, { ...token, messageId: run!.messageId! });
  await t.mutation(api.chatMachine.completeMessage, { ...token, messageId: reply.messageId, content: "done" });
  await t.mutation(api.workers.remove, { ...owner, workerId: worker.workerId });
  const paused = await t.query(api.jobs.get, ofJob);
  expect(paused).toMatchObject({ enabled: false, nextRunAt: null, workerId: null, pausedReason: WORKER_REMOVED });
  expect((await t.query(api.jobs.listRuns, { ...ofJob, limit: 50 })).map((r) => r.status)).toEqual(["done"]);
  await refused(t.mutation(api.jobs.runNow, ofJob), "Conflict", NO_WORKER_FOR_JOB);
  await refused(t.mutation(api.jobs.setEnabled, { ...ofJob, enabled: true, nextRunAt: T0 }), "Conflict", NO_WORKER_FOR_JOB);
  // Disabling clears the reason; deleting removes the job and its runs.
  expect((await t.mutation(api.jobs.setEnabled, { ...ofJob, enabled: false, nextRunAt: null })).pausedReason).toBeNull();
  await t.mutation(api.jobs.remove, ofJob);
  await refused(t.query(api.jobs.get, ofJob), "NotFound", NO_JOB);
  expect(await t.run(async (ctx) => (await ctx.db.query("jobRuns").collect()).length)).toBe(0);
});

test("deleting the machine pauses its workers' jobs", async () => {
  const t = newDeployment();
  const { owner, ofJob, machine } = await newJob(t);
  await t.mutation(api.machines.remove, { ...owner, machineId: machine.machineId });
  expect(await t.query(api.jobs.get, ofJob)).toMatchObject({ enabled: false, workerId: null, pausedReason: WORKER_REMOVED });
  expect(await t.query(api.jobsScheduler.listDue, { serverSecret: SECRET, now: T0 + 1440 * MINUTE, limit: 10 })).toEqual([]);
});

afterEach(() => {
  vi.useRealTimers();
});

test("removing a worker with more long-prompt jobs than one mutation may read pauses every one, runs frozen first", async () => {
  vi.useFakeTimers();
  const t = newDeployment();
  const chat = await newChat(t);
  const jobs = await longPromptJobs(t, chat, 60);
  // Half have a run whose message holds the prompt again; its status is frozen before the sessions go.
  for (const job of jobs.slice(0, 30)) await t.mutation(api.jobs.runNow, { ...chat.owner, jobId: job.jobId });
  await t.mutation(api.workers.remove, { ...chat.owner, workerId: chat.worker.workerId });
  const states = async () =>
    await Promise.all(jobs.map((j) => t.query(api.jobs.get, { ...chat.owner, jobId: j.jobId })));
  const inline = await states();
  expect(inline.filter((j) => j.pausedReason === WORKER_REMOVED).length).toBeGreaterThan(0);
  expect(inline.filter((j) => j.enabled).length).toBeGreaterThan(0);
  // The deployment's cron meets a job not yet paused: it pauses it rather than run it.
  vi.setSystemTime(Date.UTC(2030, 0, 1, 9, 0));
  expect(await t.mutation(internal.jobsScheduler.runDue, {})).toBe(0);
  await t.finishAllScheduledFunctions(vi.runAllTimers);
  for (const job of await states()) {
    expect(job).toMatchObject({ enabled: false, nextRunAt: null, workerId: null, pausedReason: WORKER_REMOVED });
  }
  for (const job of jobs) {
    const runs = await t.query(api.jobs.listRuns, { ...chat.owner, jobId: job.jobId, limit: 50 });
    expect(runs.map((r) => r.status)).toEqual(jobs.indexOf(job) < 30 ? ["pending"] : []);
  }
}, 60_000);
