/**
 * Workers: added, approved, rejected and removed by the owner; registered with
 * a worker token, kept alive and given their models by their machine.
 */
import type { Doc } from "./_generated/dataModel";
import { mutation, query, type MutationCtx, type QueryCtx } from "./_generated/server";
import { v } from "convex/values";
import { serverMutation, serverQuery } from "./lib/functions";
import { machineById, machineWorker, ownedMachine, ownedWorker } from "./lib/access";
import { requireMachine } from "./lib/auth";
import { deleteBelow } from "./lib/cascade";
import { fail } from "./lib/errors";
import { pauseJobsOfWorker } from "./lib/jobs";
import { newId } from "./lib/ids";
import { MAX_PROBLEM_LENGTH, MAX_WORKERS } from "./lib/limits";
import { cutPage, pageLimit, pageStart } from "./lib/paging";
import { DEFAULT_PERMISSION_POLICY, patched, workerRecord } from "./lib/records";
import { normalizeRelativePath, transitionWorker, validateModels, validateName } from "./lib/rules";
import {
  machineToken,
  permissionPolicy,
  workerRecord as workerValidator,
  type WorkerStatus,
} from "./lib/validators";

function optionalName(name: string | null): string | undefined {
  // As in the embedded backend: an empty name means no name.
  return name ? validateName(name, "Worker name") : undefined;
}

async function workersOf(ctx: QueryCtx, machineId: string) {
  const workers = await ctx.db
    .query("workers")
    .withIndex("by_machineId", (q) => q.eq("machineId", machineId))
    .take(MAX_WORKERS);
  return workers.map(workerRecord);
}

/** The sentence of orchestrator.domain.model.TOO_MANY_WORKERS. */
const TOO_MANY_WORKERS = `A machine can have at most ${MAX_WORKERS} workers. Remove one first.`;

/**
 * Refuse a new worker on a machine that has MAX_WORKERS already (pending ones
 * included): a product limit, the same on every backend, so a machine's
 * workers are always read whole within one bounded read.
 */
export async function ensureRoomForWorker(ctx: QueryCtx, machineId: string) {
  const existing = await ctx.db
    .query("workers")
    .withIndex("by_machineId", (q) => q.eq("machineId", machineId))
    .take(MAX_WORKERS);
  if (existing.length >= MAX_WORKERS) fail("Conflict", TOO_MANY_WORKERS);
}

/** Add an approved (`ready`) worker on a directory relative to the machine's root. */
export const add = serverMutation({
  args: {
    userId: v.string(),
    machineId: v.string(),
    directory: v.string(),
    name: v.union(v.string(), v.null()),
    permissionPolicy: v.optional(permissionPolicy),
  },
  returns: workerValidator,
  handler: async (ctx, { userId, machineId, directory, name, permissionPolicy }) => {
    directory = normalizeRelativePath(directory);
    const cleaned = optionalName(name);
    await ownedMachine(ctx, userId, machineId);
    await ensureRoomForWorker(ctx, machineId);
    const now = Date.now();
    const id = await ctx.db.insert("workers", {
      workerId: await newId(ctx, "worker"),
      machineId,
      userId,
      name: cleaned,
      directory,
      status: "ready",
      createdAt: now,
      approvedAt: now,
      approvedBy: userId,
      models: [],
      permissionPolicy: permissionPolicy ?? DEFAULT_PERMISSION_POLICY,
    });
    return workerRecord((await ctx.db.get(id))!);
  },
});

/** Change what the worker's agent may do; the machine uses it at the next opencode start. */
export const setPermissionPolicy = serverMutation({
  args: { userId: v.string(), workerId: v.string(), permissionPolicy },
  returns: workerValidator,
  handler: async (ctx, { userId, workerId, permissionPolicy }) => {
    const worker = await ownedWorker(ctx, userId, workerId);
    return workerRecord(await patched(ctx, worker, { permissionPolicy }));
  },
});

/** A single-use token the machine can register a worker with. */
export const issueToken = serverMutation({
  args: { userId: v.string(), machineId: v.string() },
  returns: v.object({ machineId: v.string(), workerId: v.string() }),
  handler: async (ctx, { userId, machineId }) => {
    await ownedMachine(ctx, userId, machineId);
    const workerId = await newId(ctx, "worker");
    await ctx.db.insert("workerTokens", { workerId, machineId, createdAt: Date.now() });
    return { machineId, workerId };
  },
});

async function pendingWorker(ctx: MutationCtx, userId: string, workerId: string, verb: string) {
  const worker = await ownedWorker(ctx, userId, workerId);
  if (worker.status !== "pending_authorization") {
    fail("InvalidTransition", `Only a worker waiting for approval can be ${verb}.`);
  }
  return worker;
}

/** Approve a pending worker; it becomes `ready`. */
export const approve = serverMutation({
  args: { userId: v.string(), workerId: v.string() },
  returns: workerValidator,
  handler: async (ctx, { userId, workerId }) => {
    const worker = await pendingWorker(ctx, userId, workerId, "approved");
    await ctx.db.patch(worker._id, {
      status: transitionWorker(worker.status, "ready"),
      approvedAt: Date.now(),
      approvedBy: userId,
    });
    return workerRecord((await ctx.db.get(worker._id))!);
  },
});

/** Refuse a pending worker: it is deleted and its token stays used. */
export const reject = serverMutation({
  args: { userId: v.string(), workerId: v.string() },
  returns: v.null(),
  handler: async (ctx, { userId, workerId }) => {
    const worker = await pendingWorker(ctx, userId, workerId, "rejected");
    await deleteWorker(ctx, worker);
    return null;
  },
});

/** Delete a worker in any status, with its chat sessions; its jobs are paused with a reason. */
export const remove = serverMutation({
  args: { userId: v.string(), workerId: v.string() },
  returns: v.null(),
  handler: async (ctx, { userId, workerId }) => {
    await deleteWorker(ctx, await ownedWorker(ctx, userId, workerId));
    return null;
  },
});

async function deleteWorker(ctx: MutationCtx, worker: Doc<"workers">): Promise<void> {
  await pauseJobsOfWorker(ctx, worker.workerId);
  await ctx.db.delete(worker._id);
  await deleteBelow(ctx, { kind: "worker", id: worker.workerId });
}

/** One of the user's workers ("No such worker." for anyone else's). */
export const get = serverQuery({
  args: { userId: v.string(), workerId: v.string() },
  returns: workerValidator,
  handler: async (ctx, { userId, workerId }) => {
    return workerRecord(await ownedWorker(ctx, userId, workerId));
  },
});

/** The workers of one of the user's machines, oldest first. */
export const list = serverQuery({
  args: { userId: v.string(), machineId: v.string() },
  returns: v.array(workerValidator),
  handler: async (ctx, { userId, machineId }) => {
    await ownedMachine(ctx, userId, machineId);
    return await workersOf(ctx, machineId);
  },
});

/** Workers of the user's live machines waiting for approval, oldest first, after `after`. */
async function* pendingAfter(ctx: QueryCtx, userId: string, after: number | undefined) {
  const pending = ctx.db
    .query("workers")
    .withIndex("by_userId_and_status", (q) =>
      after === undefined
        ? q.eq("userId", userId).eq("status", "pending_authorization")
        : q.eq("userId", userId).eq("status", "pending_authorization").gt("_creationTime", after),
    );
  // A deleted machine's workers are purged in the background: skip them meanwhile.
  const live = new Map<string, boolean>();
  for await (const worker of pending) {
    if (!live.has(worker.machineId)) live.set(worker.machineId, (await machineById(ctx, worker.machineId)) !== null);
    if (live.get(worker.machineId)) yield worker;
  }
}

/** A page of the workers waiting for approval across the user's machines, oldest first. */
export const listPendingPage = serverQuery({
  args: { userId: v.string(), afterWorkerId: v.optional(v.string()), limit: v.number() },
  returns: v.object({ workers: v.array(workerValidator), hasMore: v.boolean() }),
  handler: async (ctx, { userId, afterWorkerId, limit }) => {
    const after = (await pageStart(ctx, "workers", afterWorkerId, (last) => last.userId === userId))?._creationTime;
    // A page reads its workers, those of deleted machines it skips, and their machines.
    const { items, hasMore } = await cutPage(pendingAfter(ctx, userId, after), pageLimit(limit), () => 1);
    return { workers: items.map(workerRecord), hasMore };
  },
});

// --- the machine's own calls ------------------------------------------------------

/** Every worker of the calling machine, pending ones included, oldest first. */
export const listOwn = query({
  args: { ...machineToken },
  returns: v.array(workerValidator),
  handler: async (ctx, token) => {
    const machine = await requireMachine(ctx, token);
    return await workersOf(ctx, machine.machineId);
  },
});

/** Create a worker from an issued worker token; it waits for the owner's approval. */
export const register = mutation({
  args: {
    ...machineToken,
    tokenMachineId: v.string(),
    workerId: v.string(),
    directory: v.string(),
    name: v.union(v.string(), v.null()),
  },
  returns: workerValidator,
  handler: async (ctx, { tokenMachineId, workerId, directory, name, ...token }) => {
    directory = normalizeRelativePath(directory);
    const cleaned = optionalName(name);
    const machine = await requireMachine(ctx, token);
    if (tokenMachineId !== machine.machineId) {
      fail("InvalidInput", "This worker token was issued for another machine.");
    }
    const issued = await ctx.db
      .query("workerTokens")
      .withIndex("by_workerId", (q) => q.eq("workerId", workerId))
      .unique();
    if (issued === null || issued.machineId !== machine.machineId) {
      fail("NotFound", "This worker token is not known. Create a new one in the web UI.");
    }
    if (issued.usedAt !== undefined) fail("Conflict", "This worker token has already been used.");
    await ensureRoomForWorker(ctx, machine.machineId);
    const now = Date.now();
    await ctx.db.patch(issued._id, { usedAt: now });
    const id = await ctx.db.insert("workers", {
      workerId,
      machineId: machine.machineId,
      userId: machine.userId,
      name: cleaned,
      directory,
      status: "pending_authorization",
      createdAt: now,
      models: [],
    });
    return workerRecord((await ctx.db.get(id))!);
  },
});

async function setStatus(
  ctx: MutationCtx,
  token: { machineId: string; machineSecret: string },
  workerId: string,
  target: WorkerStatus,
  problem?: string,
) {
  const machine = await requireMachine(ctx, token);
  const worker = await machineWorker(ctx, machine.machineId, workerId);
  const status = transitionWorker(worker.status, target);
  const heartbeat = status === "online" ? { lastHeartbeat: Date.now() } : {};
  return workerRecord(await patched(ctx, worker, { status, ...heartbeat, problem }));
}

/** Mark an approved worker online and record its heartbeat. */
export const heartbeat = mutation({
  args: { ...machineToken, workerId: v.string() },
  returns: workerValidator,
  handler: async (ctx, { workerId, ...token }) => await setStatus(ctx, token, workerId, "online"),
});

/** Mark an approved worker offline; `problem` says why the machine cannot run it. */
export const offline = mutation({
  args: { ...machineToken, workerId: v.string(), problem: v.optional(v.string()) },
  returns: workerValidator,
  handler: async (ctx, { workerId, problem, ...token }) => {
    if (problem !== undefined && (problem.trim() === "" || problem.length > MAX_PROBLEM_LENGTH)) {
      fail("InvalidInput", `A worker's problem must be a sentence of 1-${MAX_PROBLEM_LENGTH} characters.`);
    }
    return await setStatus(ctx, token, workerId, "offline", problem);
  },
});

/** Replace the list of models the worker's agent offers. */
export const updateModels = mutation({
  args: { ...machineToken, workerId: v.string(), models: v.array(v.string()) },
  returns: workerValidator,
  handler: async (ctx, { workerId, models, ...token }) => {
    validateModels(models);
    const machine = await requireMachine(ctx, token);
    const worker = await machineWorker(ctx, machine.machineId, workerId);
    return workerRecord(await patched(ctx, worker, { models }));
  },
});

/** Replace the agents (modes) and slash commands the worker's agent offers. */
export const updateAgents = mutation({
  args: { ...machineToken, workerId: v.string(), agents: v.array(v.string()), commands: v.array(v.string()) },
  returns: workerValidator,
  handler: async (ctx, { workerId, agents, commands, ...token }) => {
    validateModels(agents);
    validateModels(commands);
    const machine = await requireMachine(ctx, token);
    const worker = await machineWorker(ctx, machine.machineId, workerId);
    return workerRecord(await patched(ctx, worker, { agents, commands }));
  },
});
