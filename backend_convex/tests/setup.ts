/** A fresh deployment per test, and the records most tests start from. */
import { convexTest } from "convex-test";
import { expect, vi } from "vitest";
import { api } from "../convex/_generated/api";
import schema from "../convex/schema";
import type { ErrorKind } from "../convex/lib/errors";

export const modules = import.meta.glob("../convex/**/*.*s");
export const SECRET = "test-deployment-secret-0123456789abcdef";

export function newDeployment() {
  vi.stubEnv("ORCHESTRATOR_SERVER_SECRET", SECRET);
  // Convex's per-transaction limits apply, so an unbounded read fails here too.
  return convexTest({ schema, modules, transactionLimits: true });
}

export type Deployment = ReturnType<typeof newDeployment>;
export type Token = { machineId: string; machineSecret: string };

/** Expect `call` to be refused with a ConvexError of this kind (and sentence). */
export async function refused(call: Promise<unknown>, kind: ErrorKind, message?: string | RegExp) {
  const error: unknown = await call.then(
    () => expect.unreachable("the call succeeded"),
    (e: unknown) => e,
  );
  expect(error).toMatchObject({ data: { kind } });
  if (message !== undefined) {
    const text = (error as { data: { message: string } }).data.message;
    if (typeof message === "string") expect(text).toBe(message);
    else expect(text).toMatch(message);
  }
}

export async function newUser(t: Deployment, username: string): Promise<string> {
  const user = await t.mutation(api.accounts.create, { serverSecret: SECRET, username, passwordHash: `hash-${username}` });
  return user.userId;
}

export async function newMachine(t: Deployment, userId: string, name = "laptop", online = false) {
  const { machine, machineSecret } = await t.action(api.machines.create, { serverSecret: SECRET, userId, name });
  const token: Token = { machineId: machine.machineId, machineSecret };
  if (online) await t.mutation(api.machines.goOnline, { ...token, rootDirectory: "/home/code" });
  return { machine, token };
}

/** The user's new unnamed worker in `directory` of the machine. */
export async function newWorker(t: Deployment, userId: string, machineId: string, directory: string) {
  return await t.mutation(api.workers.add, { serverSecret: SECRET, userId, machineId, directory, name: null });
}

/** Alice's worker in `directory` of her offline machine, and bob, who owns neither. */
export async function strangersWorker(t: Deployment, directory: string) {
  const alice = await newUser(t, "alice");
  const bob = await newUser(t, "bob");
  const { machine } = await newMachine(t, alice);
  const worker = await newWorker(t, alice, machine.machineId, directory);
  return { alice, bob, machine, worker };
}

export const MODELS = ["fake/small", "fake/large"];

/** Alice's online machine with one worker offering MODELS and one active session. */
export async function newChat(t: Deployment) {
  const alice = await newUser(t, "alice");
  const { machine, token } = await newMachine(t, alice, "laptop", true);
  const added = await newWorker(t, alice, machine.machineId, "repo");
  const worker = await t.mutation(api.workers.updateModels, { ...token, workerId: added.workerId, models: MODELS });
  const session = await t.mutation(api.chat.startSession, {
    serverSecret: SECRET,
    userId: alice,
    workerId: worker.workerId,
    model: MODELS[0],
  });
  const owner = { serverSecret: SECRET, userId: alice };
  return { alice, owner, machine, token, worker, session };
}

export type Chat = Awaited<ReturnType<typeof newChat>>;

/** A job of `chat`'s worker due at `nextRunAt` (by default 09:00 Berlin on 1 January 2030). */
export async function addJob(t: Deployment, chat: Chat, changes: { cron?: string; timezone?: string; prompt?: string } = {}, nextRunAt = Date.UTC(2030, 0, 1, 8, 0)) {
  const draft = {
    workerId: chat.worker.workerId,
    name: "Daily report",
    model: chat.worker.models[0],
    prompt: "Summarize the day.",
    cron: "0 9 * * *",
    timezone: "Europe/Berlin",
    sessionMode: "new_session" as const,
    enabled: true,
    ...changes,
  };
  return await t.mutation(api.jobs.create, { ...chat.owner, draft, nextRunAt });
}

/** `count` jobs of `chat`'s worker with prompts of the longest length, all due at once. */
export async function longPromptJobs(t: Deployment, chat: Chat, count: number) {
  const jobs: Array<Awaited<ReturnType<typeof addJob>>> = [];
  for (let n = 0; n < count; n++) jobs.push(await addJob(t, chat, { prompt: LONG_PROMPT }));
  return jobs;
}

/** A prompt at the longest a job may have (MAX_PROMPT_LENGTH in Python), 3 bytes a character. */
export const LONG_PROMPT = "€".repeat(100_000);
