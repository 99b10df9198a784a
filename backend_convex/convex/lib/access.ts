/**
 * Lookups that decide whether a record is reachable by the caller.
 *
 * Deleting a machine or a worker removes the record at once and its
 * descendants in batches (lib/cascade.ts), so a lookup here checks the whole
 * chain of parents: a session whose worker is gone is "not found" even before
 * its rows are purged. Someone else's record is "not found" too, never
 * "forbidden", so IDs reveal nothing.
 */
import type { QueryCtx } from "../_generated/server";
import type { Doc } from "../_generated/dataModel";
import { fail, NO_MACHINE, NO_MESSAGE, NO_PERMISSION, NO_SESSION, NO_WORKER } from "./errors";

export async function userById(ctx: QueryCtx, userId: string): Promise<Doc<"users"> | null> {
  return await ctx.db
    .query("users")
    .withIndex("by_userId", (q) => q.eq("userId", userId))
    .unique();
}

export async function userByName(ctx: QueryCtx, username: string): Promise<Doc<"users"> | null> {
  return await ctx.db
    .query("users")
    .withIndex("by_username", (q) => q.eq("username", username))
    .first();
}

export async function machineById(ctx: QueryCtx, machineId: string): Promise<Doc<"machines"> | null> {
  return await ctx.db
    .query("machines")
    .withIndex("by_machineId", (q) => q.eq("machineId", machineId))
    .unique();
}

export async function workerById(ctx: QueryCtx, workerId: string): Promise<Doc<"workers"> | null> {
  return await ctx.db
    .query("workers")
    .withIndex("by_workerId", (q) => q.eq("workerId", workerId))
    .unique();
}

export async function sessionById(ctx: QueryCtx, sessionId: string): Promise<Doc<"chatSessions"> | null> {
  return await ctx.db
    .query("chatSessions")
    .withIndex("by_chatSessionId", (q) => q.eq("chatSessionId", sessionId))
    .unique();
}

export async function messageById(ctx: QueryCtx, messageId: string): Promise<Doc<"chatMessages"> | null> {
  return await ctx.db
    .query("chatMessages")
    .withIndex("by_messageId", (q) => q.eq("messageId", messageId))
    .unique();
}

export async function permissionById(
  ctx: QueryCtx,
  permissionId: string,
): Promise<Doc<"permissionRequests"> | null> {
  return await ctx.db
    .query("permissionRequests")
    .withIndex("by_permissionId", (q) => q.eq("permissionId", permissionId))
    .unique();
}

/** A worker whose machine still exists. */
export async function liveWorker(ctx: QueryCtx, workerId: string): Promise<Doc<"workers"> | null> {
  const worker = await workerById(ctx, workerId);
  if (worker === null || (await machineById(ctx, worker.machineId)) === null) return null;
  return worker;
}

/** A session whose worker (and so machine) still exists. */
export async function liveSession(ctx: QueryCtx, sessionId: string): Promise<Doc<"chatSessions"> | null> {
  const session = await sessionById(ctx, sessionId);
  if (session === null || (await liveWorker(ctx, session.workerId)) === null) return null;
  return session;
}

export async function ownedMachine(ctx: QueryCtx, user: string, machineId: string): Promise<Doc<"machines">> {
  const machine = await machineById(ctx, machineId);
  if (machine === null || machine.userId !== user) fail("NotFound", NO_MACHINE);
  return machine;
}

export async function ownedWorker(ctx: QueryCtx, user: string, workerId: string): Promise<Doc<"workers">> {
  const worker = await liveWorker(ctx, workerId);
  if (worker === null || worker.userId !== user) fail("NotFound", NO_WORKER);
  return worker;
}

export async function ownedSession(ctx: QueryCtx, user: string, sessionId: string): Promise<Doc<"chatSessions">> {
  const session = await liveSession(ctx, sessionId);
  if (session === null || session.userId !== user) fail("NotFound", NO_SESSION);
  return session;
}

export async function ownedPermission(
  ctx: QueryCtx,
  user: string,
  permissionId: string,
): Promise<{ request: Doc<"permissionRequests">; session: Doc<"chatSessions"> }> {
  const request = await permissionById(ctx, permissionId);
  const session = request && (await liveSession(ctx, request.chatSessionId));
  if (request === null || !session || session.userId !== user) fail("NotFound", NO_PERMISSION);
  return { request, session };
}

/** A worker of the calling machine. */
export async function machineWorker(ctx: QueryCtx, machineId: string, workerId: string): Promise<Doc<"workers">> {
  const worker = await workerById(ctx, workerId);
  if (worker === null || worker.machineId !== machineId) fail("NotFound", NO_WORKER);
  return worker;
}

/** A session of one of the calling machine's workers. */
export async function machineSession(
  ctx: QueryCtx,
  machineId: string,
  sessionId: string,
): Promise<Doc<"chatSessions">> {
  const session = await liveSession(ctx, sessionId);
  if (session === null || session.machineId !== machineId) fail("NotFound", NO_SESSION);
  return session;
}

/** A message of one of the calling machine's sessions, with its session. */
export async function machineMessage(
  ctx: QueryCtx,
  machineId: string,
  messageId: string,
): Promise<{ message: Doc<"chatMessages">; session: Doc<"chatSessions"> }> {
  const message = await messageById(ctx, messageId);
  const session = message && message.machineId === machineId && (await liveSession(ctx, message.chatSessionId));
  if (message === null || !session) fail("NotFound", NO_MESSAGE);
  return { message, session };
}

export async function machinePermission(
  ctx: QueryCtx,
  machineId: string,
  permissionId: string,
): Promise<{ request: Doc<"permissionRequests">; session: Doc<"chatSessions"> }> {
  const request = await permissionById(ctx, permissionId);
  const session = request && request.machineId === machineId && (await liveSession(ctx, request.chatSessionId));
  if (request === null || !session) fail("NotFound", NO_PERMISSION);
  return { request, session };
}
