/** The deployment's own scheduler (jobsScheduler.runDue, every minute from crons.ts) beside the web server's. */
import { afterEach, beforeEach, expect, test, vi } from "vitest";
import { getDocumentSize, type Value } from "convex/values";
import { api, internal } from "../convex/_generated/api";
import { nextDue, unreadableSchedule } from "../convex/lib/jobs";
import { PAGE_BYTES } from "../convex/lib/paging";
import { addJob, longPromptJobs, LONG_PROMPT, newChat, newDeployment, SECRET, type Chat, type Deployment } from "./setup";

const MINUTE = 60_000;
const DAY = 1440 * MINUTE;
// 09:00 in Berlin is 08:00 UTC in winter (CET) and 07:00 UTC in summer (CEST).
const T0 = Date.UTC(2030, 0, 1, 8, 0);

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["Date"] });
});
afterEach(() => {
  vi.useRealTimers();
});

async function newJob(t: Deployment, cron = "0 9 * * *", timezone = "Europe/Berlin", nextRunAt = T0) {
  const chat = await newChat(t);
  const job = await addJob(t, chat, { cron, timezone }, nextRunAt);
  const ofJob = { ...chat.owner, jobId: job.jobId };
  const runs = async () => await t.query(api.jobs.listRuns, { ...ofJob, limit: 50 });
  const get = async () => await t.query(api.jobs.get, ofJob);
  return { ...chat, job, ofJob, runs, get };
}

const runDue = (t: Deployment, now: number) => {
  vi.setSystemTime(now);
  return t.mutation(internal.jobsScheduler.runDue, {});
};

test("nextDue: strictly after now, in the job's time zone, across daylight saving time", () => {
  expect(nextDue("0 9 * * *", "Europe/Berlin", T0 - 1)).toBe(T0);
  expect(nextDue("0 9 * * *", "Europe/Berlin", T0)).toBe(T0 + DAY);
  expect(nextDue("0 9 * * *", "Europe/Berlin", T0 + 30_000)).toBe(T0 + DAY);
  // The last Sunday of March 2030 is the 31st: clocks go forward, 09:00 is 07:00 UTC from then on.
  expect(nextDue("0 9 * * *", "Europe/Berlin", Date.UTC(2030, 2, 30, 9, 0))).toBe(Date.UTC(2030, 2, 31, 7, 0));
  expect(nextDue("*/5 * * * *", "UTC", Date.UTC(2030, 0, 1, 9, 0))).toBe(Date.UTC(2030, 0, 1, 9, 5));
  expect(nextDue("0  9 * *   *", "UTC", T0)).toBe(Date.UTC(2030, 0, 1, 9, 0)); // extra spaces
  // Day of month and day of week both restricted: either matches (Vixie cron, like cronsim).
  expect(nextDue("0 9 1 * 1", "UTC", Date.UTC(2030, 0, 1, 9, 0))).toBe(Date.UTC(2030, 0, 7, 9, 0));
  expect(nextDue("not a cron", "UTC", T0)).toBe("unreadable");
  expect(nextDue("0 9 * * * *", "UTC", T0)).toBe("unreadable"); // six fields
  expect(nextDue("0 9 * * *", "Nowhere/Atlantis", T0)).toBe("unreadable");
});

test("a due job gets exactly one run, and its next run is 09:00 Berlin the next day", async () => {
  const t = newDeployment();
  const { runs, get } = await newJob(t);
  expect(await runDue(t, T0 - 1)).toBe(0);
  expect(await runs()).toEqual([]);
  expect(await runDue(t, T0 + 2_000)).toBe(1);
  const [run, ...more] = await runs();
  expect(more).toEqual([]);
  expect(run).toMatchObject({ scheduledFor: T0, status: "pending", error: null });
  expect(await get()).toMatchObject({ enabled: true, nextRunAt: T0 + DAY });
  // Again at the same moment (a retry, an overlapping tick): nothing more.
  expect(await runDue(t, T0 + 2_000)).toBe(0);
  expect(await runs()).toHaveLength(1);
  expect((await get()).nextRunAt).toBe(T0 + DAY);
});

test("in summer 09:00 Berlin is 07:00 UTC", async () => {
  const t = newDeployment();
  const slot = Date.UTC(2030, 6, 1, 7, 0);
  const { runs, get } = await newJob(t, "0 9 * * *", "Europe/Berlin", slot);
  expect(await runDue(t, slot)).toBe(1);
  expect((await runs()).map((r) => r.scheduledFor)).toEqual([slot]);
  expect((await get()).nextRunAt).toBe(slot + DAY);
});

test("a job that missed three slots runs once and moves to the first due time after now", async () => {
  const t = newDeployment();
  const { runs, get } = await newJob(t);
  const now = T0 + 3 * DAY + 5 * MINUTE; // the slots of Jan 1, 2, 3 and 4 have passed
  expect(await runDue(t, now)).toBe(1);
  expect((await runs()).map((r) => r.scheduledFor)).toEqual([T0]);
  const next = (await get()).nextRunAt!;
  expect(next).toBe(T0 + 4 * DAY);
  expect(next).toBeGreaterThan(now);
  expect(await runDue(t, now + MINUTE)).toBe(0);
  expect(await runs()).toHaveLength(1);
});

test("the web server's scheduler and the deployment's cron share a slot: one run", async () => {
  const t = newDeployment();
  const { job, runs, get } = await newJob(t);
  const python = (nextRunAt: number | null) =>
    t.mutation(api.jobsScheduler.startRunAt, { serverSecret: SECRET, jobId: job.jobId, scheduledFor: T0, nextRunAt });
  // The web server first, then the cron: the cron finds nothing due.
  expect(await python(T0 + DAY)).not.toBeNull();
  expect(await runDue(t, T0 + 1_000)).toBe(0);
  expect(await runs()).toHaveLength(1);
  // The cron first, then the web server with the slot it saw: null, nothing written.
  expect(await runDue(t, T0 + DAY)).toBe(1);
  const slot2 = T0 + DAY;
  expect(
    await t.mutation(api.jobsScheduler.startRunAt, {
      serverSecret: SECRET,
      jobId: job.jobId,
      scheduledFor: slot2,
      nextRunAt: slot2 + 5 * MINUTE,
    }),
  ).toBeNull();
  expect((await runs()).map((r) => r.scheduledFor)).toEqual([slot2, T0]);
  expect((await get()).nextRunAt).toBe(T0 + 2 * DAY);
});

test("a stored schedule that cannot be read pauses the job with a reason instead of failing", async () => {
  const t = newDeployment();
  const { job, runs, get } = await newJob(t);
  await t.run(async (ctx) => {
    const doc = await ctx.db
      .query("jobs")
      .withIndex("by_jobId", (q) => q.eq("jobId", job.jobId))
      .unique();
    await ctx.db.patch(doc!._id, { cron: "61 25 * * *" });
  });
  expect(await runDue(t, T0)).toBe(0);
  expect(await runs()).toEqual([]);
  expect(await get()).toMatchObject({
    enabled: false,
    nextRunAt: null,
    pausedReason: unreadableSchedule("61 25 * * *", "Europe/Berlin"),
  });
});

/** Each job's runs, by job. */
async function runsOfJobs(t: Deployment, chat: Chat, jobIds: string[]) {
  return await Promise.all(jobIds.map((jobId) => t.query(api.jobs.listRuns, { ...chat.owner, jobId, limit: 50 })));
}

test("more due jobs with long prompts than one mutation may read: the cron runs each once, in size-cut batches", async () => {
  vi.useFakeTimers();
  const t = newDeployment();
  const chat = await newChat(t);
  const jobs = await longPromptJobs(t, chat, 60);
  expect(60 * 3 * LONG_PROMPT.length).toBeGreaterThan(16 * 1024 * 1024);
  const first = await runDue(t, T0 + 1_000);
  expect(first).toBeGreaterThan(0);
  expect(first).toBeLessThan(60);
  await t.finishAllScheduledFunctions(vi.runAllTimers);
  const runs = await runsOfJobs(t, chat, jobs.map((j) => j.jobId));
  expect(runs.map((r) => r.map((run) => run.scheduledFor))).toEqual(jobs.map(() => [T0]));
  expect(await runDue(t, T0 + 2_000)).toBe(0);
}, 60_000);

test("the web server's due list is cut by size; the jobs left out are listed on its next look, each run once", async () => {
  const t = newDeployment();
  const chat = await newChat(t);
  const jobs = await longPromptJobs(t, chat, 60);
  const now = T0 + 1_000;
  let looks = 0;
  for (;;) {
    const due = await t.query(api.jobsScheduler.listDue, { serverSecret: SECRET, now, limit: 500 });
    if (due.length === 0) break;
    expect(getDocumentSize({ due } as unknown as Record<string, Value>)).toBeLessThanOrEqual(PAGE_BYTES);
    for (const job of due) {
      await t.mutation(api.jobsScheduler.startRunAt, {
        serverSecret: SECRET, jobId: job.jobId, scheduledFor: job.nextRunAt!, nextRunAt: T0 + DAY,
      });
    }
    looks++;
  }
  expect(looks).toBeGreaterThan(1);
  const runs = await runsOfJobs(t, chat, jobs.map((j) => j.jobId));
  expect(runs.map((r) => r.length)).toEqual(jobs.map(() => 1));
}, 60_000);
