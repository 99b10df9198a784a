/**
 * Directory commands: queued, read and cancelled by the owner through the web
 * server; claimed, advanced and finished by the machine they run on. Each call
 * is one mutation, so a command is claimed once and finishes once even when
 * calls race. Another user's machine or command is "not found".
 */
import type { Doc } from "./_generated/dataModel";
import { mutation, query, type MutationCtx, type QueryCtx } from "./_generated/server";
import { v } from "convex/values";
import { serverMutation, serverQuery } from "./lib/functions";
import { byPublicId, machineById, ownedMachine, reachable } from "./lib/access";
import { requireMachine } from "./lib/auth";
import {
  claim,
  finish,
  KEEP_FINISHED_COMMANDS,
  LIST_COMMANDS_LIMIT,
  MAX_PENDING_COMMANDS,
  MAX_RUNNING_COMMANDS,
  NO_COMMAND,
  parseKind,
  recordProgress,
  requestCancel,
  TOO_MANY_PENDING,
  validateArguments,
  validateProgress,
} from "./lib/commandRules";
import { fail } from "./lib/errors";
import { newId } from "./lib/ids";
import { commandRecord, patched } from "./lib/records";
import {
  commandArguments,
  commandRecord as commandValidator,
  commandResult,
  machineToken,
} from "./lib/validators";


async function ownedCommand(ctx: QueryCtx, userId: string, commandId: string): Promise<Doc<"commands">> {
  const command = await byPublicId(ctx, "commands", commandId);
  const machine = command && (await machineById(ctx, command.machineId));
  if (command === null || !machine || machine.userId !== userId) fail("NotFound", NO_COMMAND);
  return command;
}

async function machineCommand(ctx: QueryCtx, machineId: string, commandId: string): Promise<Doc<"commands">> {
  return reachable(await byPublicId(ctx, "commands", commandId), (command) => command.machineId === machineId, NO_COMMAND);
}

async function save(ctx: MutationCtx, command: Doc<"commands">, changes: Partial<Doc<"commands">>) {
  return commandRecord(await patched(ctx, command, changes));
}

/** Queue a `pending` command for one of the user's machines, online or not. */
export const create = serverMutation({
  args: {
    userId: v.string(),
    machineId: v.string(),
    kind: v.string(),
    arguments: commandArguments,
  },
  returns: commandValidator,
  handler: async (ctx, { userId, machineId, kind, arguments: raw }) => {
    const parsed = parseKind(kind);
    const checked = validateArguments(parsed, raw);
    await ownedMachine(ctx, userId, machineId);
    const waiting = await ctx.db
      .query("commands")
      .withIndex("by_machineId_and_status", (q) => q.eq("machineId", machineId).eq("status", "pending"))
      .take(MAX_PENDING_COMMANDS);
    if (waiting.length >= MAX_PENDING_COMMANDS) fail("Conflict", TOO_MANY_PENDING);
    const id = await ctx.db.insert("commands", {
      commandId: await newId(ctx, "command"),
      machineId,
      userId,
      kind: parsed,
      arguments: checked,
      status: "pending",
      progress: 0,
      cancelRequested: false,
      createdAt: Date.now(),
    });
    await pruneFinished(ctx, machineId);
    return commandRecord((await ctx.db.get(id))!);
  },
});

async function pruneFinished(ctx: MutationCtx, machineId: string): Promise<void> {
  const newest = (status: "done" | "failed") =>
    ctx.db
      .query("commands")
      .withIndex("by_machineId_and_status", (q) => q.eq("machineId", machineId).eq("status", status))
      .order("desc")
      .take(KEEP_FINISHED_COMMANDS + 1);
  const finished = [...(await newest("done")), ...(await newest("failed"))].sort(
    (a, b) => b.createdAt - a.createdAt || b._creationTime - a._creationTime,
  );
  // One new command at a time: at most a couple ever lie past the limit.
  for (const old of finished.slice(KEEP_FINISHED_COMMANDS)) await ctx.db.delete(old._id);
}

/** One of the user's commands. */
export const get = serverQuery({
  args: { userId: v.string(), commandId: v.string() },
  returns: commandValidator,
  handler: async (ctx, { userId, commandId }) => {
    return commandRecord(await ownedCommand(ctx, userId, commandId));
  },
});

/** The machine's latest commands, newest first (at most LIST_COMMANDS_LIMIT). */
export const list = serverQuery({
  args: { userId: v.string(), machineId: v.string() },
  returns: v.array(commandValidator),
  handler: async (ctx, { userId, machineId }) => {
    await ownedMachine(ctx, userId, machineId);
    const newest = await ctx.db
      .query("commands")
      .withIndex("by_machineId", (q) => q.eq("machineId", machineId))
      .order("desc")
      .take(LIST_COMMANDS_LIMIT);
    return newest.map(commandRecord);
  },
});

/** Fail a pending command at once, or ask the machine to stop a running one. */
export const cancel = serverMutation({
  args: { userId: v.string(), commandId: v.string() },
  returns: commandValidator,
  handler: async (ctx, { userId, commandId }) => {
    const command = await ownedCommand(ctx, userId, commandId);
    return await save(ctx, command, requestCancel(command, Date.now()));
  },
});

// --- the machine's own calls ------------------------------------------------------

/** The calling machine's pending and running commands, oldest first. */
export const listOpen = query({
  args: { ...machineToken },
  returns: v.array(commandValidator),
  handler: async (ctx, token) => {
    const machine = await requireMachine(ctx, token);
    const open = (status: "pending" | "running") =>
      ctx.db
        .query("commands")
        .withIndex("by_machineId_and_status", (q) => q.eq("machineId", machine.machineId).eq("status", status))
        .take(status === "pending" ? MAX_PENDING_COMMANDS : MAX_RUNNING_COMMANDS);
    const found = [...(await open("pending")), ...(await open("running"))].sort(
      (a, b) => a.createdAt - b.createdAt || a._creationTime - b._creationTime,
    );
    return found.map(commandRecord);
  },
});

/** Take a pending command: it becomes `running`; Conflict if it was already taken. */
export const claimCommand = mutation({
  args: { ...machineToken, commandId: v.string() },
  returns: commandValidator,
  handler: async (ctx, { commandId, ...token }) => {
    const machine = await requireMachine(ctx, token);
    const command = await machineCommand(ctx, machine.machineId, commandId);
    return await save(ctx, command, claim(command, Date.now()));
  },
});

/** Record how far a running command got (0-100) and the line that said so. */
export const reportProgress = mutation({
  args: { ...machineToken, commandId: v.string(), progress: v.number(), line: v.string() },
  returns: commandValidator,
  handler: async (ctx, { commandId, progress, line, ...token }) => {
    validateProgress(progress, line);
    const machine = await requireMachine(ctx, token);
    const command = await machineCommand(ctx, machine.machineId, commandId);
    return await save(ctx, command, recordProgress(command, progress, line));
  },
});

/** End a running command: `done` with its result, or `failed` with one sentence. */
export const finishCommand = mutation({
  args: {
    ...machineToken,
    commandId: v.string(),
    result: v.union(commandResult, v.null()),
    error: v.union(v.string(), v.null()),
  },
  returns: commandValidator,
  handler: async (ctx, { commandId, result, error, ...token }) => {
    const machine = await requireMachine(ctx, token);
    const command = await machineCommand(ctx, machine.machineId, commandId);
    return await save(ctx, command, finish(command, Date.now(), result, error));
  },
});
