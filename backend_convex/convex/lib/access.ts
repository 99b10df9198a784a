/**
 * Lookups that decide whether a record is reachable by the caller.
 *
 * Deleting a machine or a worker removes the record at once and its
 * descendants in batches (lib/cascade.ts), so a lookup here checks the whole
 * chain of parents: a session whose worker is gone is "not found" even before
 * its rows are purged. Someone else's record is "not found" too, never
 * "forbidden", so IDs reveal nothing.
 */
import type { GenericTableInfo, NamedTableInfo, Query, QueryInitializer } from "convex/server";
import type { QueryCtx } from "../_generated/server";
import type { DataModel, Doc, TableNames } from "../_generated/dataModel";
import { fail, NO_MACHINE, NO_MESSAGE, NO_PERMISSION, NO_QUESTION, NO_SESSION, NO_USER, NO_WORKER } from "./errors";

/** Each table's public ID field; the table has the index `by_<field>` on it (schema.ts). */
const PUBLIC_ID = {
  users: "userId",
  machines: "machineId",
  workers: "workerId",
  workerTokens: "workerId",
  chatSessions: "chatSessionId",
  chatMessages: "messageId",
  permissionRequests: "permissionId",
  questionRequests: "questionId",
  commands: "commandId",
  jobs: "jobId",
  jobRuns: "runId",
  apiTokens: "tokenId",
  signIns: "signInId",
} as const satisfies Partial<Record<TableNames, string>>;

export type PublicIdTable = keyof typeof PUBLIC_ID;

/** The public ID of a record of `table` (the document's or its exported record's). */
export function publicIdOf(table: PublicIdTable, record: object): string {
  return (record as Record<string, string>)[PUBLIC_ID[table]];
}

/** A table seen through its one-field indexes `by_<field>` (Convex adds `_creationTime` to each). */
type OneFieldIndexes = GenericTableInfo & { indexes: Record<string, [string, "_creationTime"]> };

/** The documents of `table` whose `field` is `value` (created after `after`, if given), through its `by_<field>` index. */
function whereEqual<T extends TableNames>(
  ctx: QueryCtx,
  table: T,
  field: string,
  value: string,
  after?: number,
): Query<NamedTableInfo<DataModel, T>> {
  // Generic over the table, TypeScript cannot name the index; the callers and the schema agree on it.
  const query = ctx.db.query(table) as unknown as QueryInitializer<OneFieldIndexes>;
  return query.withIndex(`by_${field}`, (q) =>
    after === undefined ? q.eq(field, value) : q.eq(field, value).gt("_creationTime", after),
  ) as unknown as Query<NamedTableInfo<DataModel, T>>;
}

/** The records of `table` whose public ID is `id` (at most one), through its `by_<field>` index. */
export function withPublicId<T extends PublicIdTable>(ctx: QueryCtx, table: T, id: string): Query<NamedTableInfo<DataModel, T>> {
  return whereEqual(ctx, table, PUBLIC_ID[table], id);
}

/** The tables a user's documents are listed from, each with a `by_userId` index (schema.ts). */
type UserTable = "machines" | "jobs" | "apiTokens" | "pushSubscriptions" | "notificationSettings" | "inboxSeen" | "signIns";

/** The user's documents of `table`, oldest first (those created after `after`, if given). */
export function ofUser<T extends UserTable>(
  ctx: QueryCtx,
  table: T,
  userId: string,
  after?: number,
): Query<NamedTableInfo<DataModel, T>> {
  return whereEqual(ctx, table, "userId", userId, after);
}

/** The record of `table` whose public ID is `id`, or null. */
export async function byPublicId<T extends PublicIdTable>(ctx: QueryCtx, table: T, id: string): Promise<Doc<T> | null> {
  return await withPublicId(ctx, table, id).unique();
}

export async function userById(ctx: QueryCtx, userId: string): Promise<Doc<"users"> | null> {
  return await byPublicId(ctx, "users", userId);
}

export async function userByName(ctx: QueryCtx, username: string): Promise<Doc<"users"> | null> {
  return await ctx.db
    .query("users")
    .withIndex("by_username", (q) => q.eq("username", username))
    .first();
}

/** Refuse a user ID no account has ("No such user."). */
export async function requireUser(ctx: QueryCtx, userId: string): Promise<Doc<"users">> {
  const user = await userById(ctx, userId);
  if (user === null) fail("NotFound", NO_USER);
  return user;
}

export async function machineById(ctx: QueryCtx, machineId: string): Promise<Doc<"machines"> | null> {
  return await byPublicId(ctx, "machines", machineId);
}

export async function workerById(ctx: QueryCtx, workerId: string): Promise<Doc<"workers"> | null> {
  return await byPublicId(ctx, "workers", workerId);
}

export async function sessionById(ctx: QueryCtx, sessionId: string): Promise<Doc<"chatSessions"> | null> {
  return await byPublicId(ctx, "chatSessions", sessionId);
}

export async function messageById(ctx: QueryCtx, messageId: string): Promise<Doc<"chatMessages"> | null> {
  return await byPublicId(ctx, "chatMessages", messageId);
}

export async function permissionById(ctx: QueryCtx, permissionId: string): Promise<Doc<"permissionRequests"> | null> {
  return await byPublicId(ctx, "permissionRequests", permissionId);
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

/** `found` when it is the caller's (`mine`); else NotFound with `notFound`, never "forbidden". */
export function reachable<T>(found: T | null, mine: (found: T) => boolean, notFound: string): T {
  if (found === null || !mine(found)) fail("NotFound", notFound);
  return found;
}

export async function ownedMachine(ctx: QueryCtx, user: string, machineId: string): Promise<Doc<"machines">> {
  return reachable(await machineById(ctx, machineId), (machine) => machine.userId === user, NO_MACHINE);
}

export async function ownedWorker(ctx: QueryCtx, user: string, workerId: string): Promise<Doc<"workers">> {
  return reachable(await liveWorker(ctx, workerId), (worker) => worker.userId === user, NO_WORKER);
}

export async function ownedSession(ctx: QueryCtx, user: string, sessionId: string): Promise<Doc<"chatSessions">> {
  return reachable(await liveSession(ctx, sessionId), (session) => session.userId === user, NO_SESSION);
}

/** The tables of requests an agent makes during a reply, and what an unknown one is called. */
const REQUESTS = { permissionRequests: NO_PERMISSION, questionRequests: NO_QUESTION } as const;
export type RequestDocs = { permissionRequests: Doc<"permissionRequests">; questionRequests: Doc<"questionRequests"> };
export type RequestTable = keyof RequestDocs;

/** A permission request or question whose session still exists, when `mine` says it is the caller's. */
async function reachableRequest<T extends RequestTable>(
  ctx: QueryCtx,
  table: T,
  id: string,
  mine: (request: RequestDocs[T], session: Doc<"chatSessions">) => boolean,
): Promise<{ request: RequestDocs[T]; session: Doc<"chatSessions"> }> {
  const request = (await byPublicId(ctx, table, id)) as RequestDocs[T] | null;
  const session = request && (await liveSession(ctx, request.chatSessionId));
  if (request === null || !session || !mine(request, session)) fail("NotFound", REQUESTS[table]);
  return { request, session };
}

/** A permission request or question in a session of the user's, with its session. */
export async function ownedRequest<T extends RequestTable>(ctx: QueryCtx, table: T, user: string, id: string) {
  return await reachableRequest(ctx, table, id, (_, session) => session.userId === user);
}

/** A worker of the calling machine. */
export async function machineWorker(ctx: QueryCtx, machineId: string, workerId: string): Promise<Doc<"workers">> {
  return reachable(await workerById(ctx, workerId), (worker) => worker.machineId === machineId, NO_WORKER);
}

/** A session of one of the calling machine's workers. */
export async function machineSession(ctx: QueryCtx, machineId: string, sessionId: string): Promise<Doc<"chatSessions">> {
  return reachable(await liveSession(ctx, sessionId), (session) => session.machineId === machineId, NO_SESSION);
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

/** A permission request or question of one of the calling machine's sessions, with its session. */
export async function machineRequest<T extends RequestTable>(ctx: QueryCtx, table: T, machineId: string, id: string) {
  return await reachableRequest(ctx, table, id, (request) => request.machineId === machineId);
}
