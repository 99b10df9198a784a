/**
 * Machines: created and listed by their owner through the web server, and
 * brought online, kept alive and taken offline by their own machine process.
 */
import { internal } from "./_generated/api";
import type { Doc } from "./_generated/dataModel";
import { action, internalMutation, mutation, query, type MutationCtx } from "./_generated/server";
import { v } from "convex/values";
import { serverMutation, serverQuery } from "./lib/functions";
import { ofUser, ownedMachine, requireUser } from "./lib/access";
import { hashSecret, requireMachine, requireServer } from "./lib/auth";
import { deleteBelow } from "./lib/cascade";
import { pauseJobsOfMachine } from "./lib/jobs";
import { recoverCommands } from "./lib/commandRules";
import { fail, MACHINE_IN_USE, TAKEN_OVER } from "./lib/errors";
import { newId, newSecret } from "./lib/ids";
import { MAX_WORKERS, SWEEP_BATCH } from "./lib/limits";
import { cutPage, MACHINE_PAGE, pageLimit, pageStart } from "./lib/paging";
import { machineRecord, patched } from "./lib/records";
import { validateName } from "./lib/rules";
import { endMessage } from "./chatMachine";
import { MAX_WORK_SESSIONS } from "./lib/limits";
import {
  machineRecord as machineValidator,
  machineSummary,
  machineToken,
  serverCaller,
  type MachineRecord,
} from "./lib/validators";

/**
 * A machine silent for this long is offline. On Convex the machine process beats every 45 s
 * (every call is billed; GitHub's runner and HAPI beat every 30-60 s), so this allows one
 * missed beat and a late one.
 */
export const STALE_AFTER_MS = 120_000;

/**
 * Create an offline machine; its token's secret is returned only here.
 *
 * An action, because only actions have real randomness for the secret; the
 * record itself is written by `insert`.
 */
export const create = action({
  args: { ...serverCaller, userId: v.string(), name: v.string() },
  returns: v.object({ machine: machineValidator, machineSecret: v.string() }),
  handler: async (ctx, { serverSecret, userId, name }): Promise<{ machine: MachineRecord; machineSecret: string }> => {
    requireServer(serverSecret);
    const machineSecret = newSecret();
    const machine: MachineRecord = await ctx.runMutation(internal.machines.insert, {
      userId,
      name,
      secretHash: await hashSecret(machineSecret),
    });
    return { machine, machineSecret };
  },
});

/** The write half of `create`. */
export const insert = internalMutation({
  args: { userId: v.string(), name: v.string(), secretHash: v.string() },
  returns: machineValidator,
  handler: async (ctx, { userId, name, secretHash }) => {
    const cleaned = validateName(name, "Machine name");
    await requireUser(ctx, userId);
    const id = await ctx.db.insert("machines", {
      machineId: await newId(ctx, "machine"),
      userId,
      name: cleaned,
      secretHash,
      status: "offline",
      createdAt: Date.now(),
    });
    return machineRecord((await ctx.db.get(id))!);
  },
});

/**
 * A page of the user's machines, oldest first, after the machine the last page
 * ended with; each with its workers counted by status.
 */
export const listPage = serverQuery({
  args: { userId: v.string(), afterMachineId: v.optional(v.string()), limit: v.number() },
  returns: v.object({ machines: v.array(machineSummary), hasMore: v.boolean() }),
  handler: async (ctx, { userId, afterMachineId, limit }) => {
    const after = (await pageStart(ctx, "machines", afterMachineId, (last) => last.userId === userId))?._creationTime;
    const oldestFirst = ofUser(ctx, "machines", userId, after);
    // A page of machines also reads their workers (at most MAX_WORKERS each), so it is short.
    const { items, hasMore } = await cutPage(oldestFirst, pageLimit(limit, MACHINE_PAGE), () => 1);
    const machines = await Promise.all(
      items.map(async (machine) => {
        const workers = { pending_authorization: 0, ready: 0, online: 0, offline: 0 };
        const rows = await ctx.db
          .query("workers")
          .withIndex("by_machineId", (q) => q.eq("machineId", machine.machineId))
          .take(MAX_WORKERS);
        for (const worker of rows) workers[worker.status]++;
        return { machine: machineRecord(machine), workers };
      }),
    );
    return { machines, hasMore };
  },
});

/** One of the user's machines. */
export const get = serverQuery({
  args: { userId: v.string(), machineId: v.string() },
  returns: machineValidator,
  handler: async (ctx, { userId, machineId }) => {
    return machineRecord(await ownedMachine(ctx, userId, machineId));
  },
});

/** Delete a machine with its workers and chat (their jobs are paused); its token stops working at once. */
export const remove = serverMutation({
  args: { userId: v.string(), machineId: v.string() },
  returns: v.null(),
  handler: async (ctx, { userId, machineId }) => {
    const machine = await ownedMachine(ctx, userId, machineId);
    await pauseJobsOfMachine(ctx, machineId, MAX_WORKERS);
    await ctx.db.delete(machine._id);
    await deleteBelow(ctx, { kind: "machine", id: machineId });
    return null;
  },
});

// --- the machine's own calls ------------------------------------------------------

/** The machine the token belongs to. */
export const authenticate = query({
  args: { ...machineToken },
  returns: machineValidator,
  handler: async (ctx, token) => machineRecord(await requireMachine(ctx, token)),
});

/** A machine process's lease: its instance id and for how long (see domain/lease.py). */
const lease = { instance: v.optional(v.string()), leaseMs: v.optional(v.number()) };

function checkLeaseArgs(instance: string | undefined, leaseMs: number | undefined): void {
  if (instance === undefined && leaseMs === undefined) return;
  if (instance === undefined || instance.length === 0 || instance.length > 64)
    fail("InvalidInput", "'instance' must be a string of 1-64 characters.");
  if (leaseMs === undefined || !Number.isInteger(leaseMs) || leaseMs < 0 || leaseMs > 3_600_000)
    fail("InvalidInput", "'lease_ms' must be a whole number from 0 to 3600000.");
}

/**
 * Mark the machine online, recording its root directory and a heartbeat; recover its commands.
 * With a lease, claim the machine for that process unless another holds a lease still running.
 */
export const goOnline = mutation({
  args: { ...machineToken, rootDirectory: v.string(), ...lease },
  returns: machineValidator,
  handler: async (ctx, { rootDirectory, instance, leaseMs, ...token }) => {
    checkLeaseArgs(instance, leaseMs);
    const machine = await requireMachine(ctx, token);
    const now = Date.now();
    if (instance !== undefined && leaseMs !== undefined) {
      const held = machine.instanceId !== undefined && machine.instanceId !== instance;
      if (held && machine.leaseUntil !== undefined && machine.leaseUntil > now)
        fail("MachineInUse", MACHINE_IN_USE);
      await ctx.db.patch(machine._id, { instanceId: instance, leaseUntil: now + leaseMs });
    }
    await ctx.db.patch(machine._id, { status: "online", rootDirectory, lastHeartbeat: now });
    // A (re)started process: what a dead one left running is not running any more.
    await recoverCommands(ctx, machine.machineId, now);
    return machineRecord((await ctx.db.get(machine._id))!);
  },
});

/** Record that the machine is alive (and online); renew the lease, unless it was taken over. */
export const heartbeat = mutation({
  args: { ...machineToken, ...lease },
  returns: machineValidator,
  handler: async (ctx, { instance, leaseMs, ...token }) => {
    checkLeaseArgs(instance, leaseMs);
    const machine = await requireMachine(ctx, token);
    const now = Date.now();
    if (instance !== undefined && leaseMs !== undefined) {
      if (machine.instanceId !== undefined && machine.instanceId !== instance)
        fail("MachineInUse", TAKEN_OVER);
      await ctx.db.patch(machine._id, { instanceId: instance, leaseUntil: now + leaseMs });
    }
    return machineRecord(await patched(ctx, machine, { status: "online", lastHeartbeat: now }));
  },
});

/** Mark the machine and its online workers offline; only the lease's holder may. */
export const goOffline = mutation({
  args: { ...machineToken, ...lease },
  returns: v.null(),
  handler: async (ctx, { instance, leaseMs, ...token }) => {
    checkLeaseArgs(instance, leaseMs);
    const machine = await requireMachine(ctx, token);
    if (instance !== undefined && machine.instanceId !== undefined && machine.instanceId !== instance)
      return null;
    await ctx.db.patch(machine._id, { instanceId: undefined, leaseUntil: undefined });
    await setOffline(ctx, machine);
    return null;
  },
});

async function setOffline(ctx: MutationCtx, machine: Doc<"machines">): Promise<void> {
  await ctx.db.patch(machine._id, { status: "offline" });
  const online = await ctx.db
    .query("workers")
    .withIndex("by_machineId_and_status", (q) => q.eq("machineId", machine.machineId).eq("status", "online"))
    .take(MAX_WORKERS);
  for (const worker of online) await ctx.db.patch(worker._id, { status: "offline" });
}

// --- housekeeping -----------------------------------------------------------------

/** Why a reply of a machine that went away ended (its text so far is kept). */
const GONE_REASON = "The machine went offline while this reply was being written.";

/** End the machine's streaming replies as interrupted, keeping the text they hold. */
async function endRepliesOfGoneMachine(ctx: MutationCtx, machineId: string): Promise<void> {
  const streaming = await ctx.db
    .query("chatMessages")
    .withIndex("by_machineId_and_status", (q) => q.eq("machineId", machineId).eq("status", "streaming"))
    .take(MAX_WORK_SESSIONS); // at most one streaming reply per session
  for (const message of streaming) {
    const session = await ctx.db
      .query("chatSessions")
      .withIndex("by_chatSessionId", (q) => q.eq("chatSessionId", message.chatSessionId))
      .unique();
    if (session !== null && message.role === "assistant") {
      await endMessage(ctx, message, session, "interrupted", null, GONE_REASON);
    }
  }
}

async function markStale(ctx: MutationCtx, lastSeenBefore: number): Promise<string[]> {
  const stale = await ctx.db
    .query("machines")
    .withIndex("by_status_and_lastHeartbeat", (q) => q.eq("status", "online").lt("lastHeartbeat", lastSeenBefore))
    .take(SWEEP_BATCH);
  stale.sort((a, b) => a.createdAt - b.createdAt || a._creationTime - b._creationTime);
  for (const machine of stale) {
    await endRepliesOfGoneMachine(ctx, machine.machineId);
    await setOffline(ctx, machine);
  }
  return stale.map((machine) => machine.machineId);
}

/** Set online machines silent since the cutoff (and their workers) offline; their IDs. */
export const markStaleOffline = serverMutation({
  args: { lastSeenBefore: v.number() },
  returns: v.array(v.string()),
  handler: async (ctx, { lastSeenBefore }) => {
    return await markStale(ctx, lastSeenBefore);
  },
});

/** The cron's sweep: machines silent for STALE_AFTER_MS go offline. */
export const sweepStale = internalMutation({
  args: {},
  returns: v.array(v.string()),
  handler: async (ctx) => await markStale(ctx, Date.now() - STALE_AFTER_MS),
});

