/**
 * The inbox's finished replies (orchestrator/domain/notifications.py FinishedReply): a small
 * row per reply that ended, written when it ends, so the inbox never reads a reply's text;
 * and the pages of requests waiting for an answer (permission requests, questions).
 */
import type { Doc } from "../_generated/dataModel";
import type { MutationCtx, QueryCtx } from "../_generated/server";
import { getDocumentSize, v, type GenericValidator, type Infer, type Value } from "convex/values";
import { serverQuery } from "./functions";
import { byPublicId, sessionById, workerById, type PublicIdTable, type RequestDocs, type RequestTable } from "./access";
import { cutPage, MAX_PAGE, RECORD_OVERHEAD } from "./paging";
import type { MessageStatus } from "./validators";

/** Endings listed in the inbox (INBOX_ENDINGS): a reply the user stopped is not news to them. */
export const INBOX_ENDINGS: ReadonlySet<string> = new Set(["completed", "failed", "interrupted"]);
/** The preview's length in characters (MAX_LINE). */
export const MAX_LINE = 80;
/** Characters of the text looked at for the preview (enough for MAX_LINE words). */
const PREVIEW_SOURCE = 4 * MAX_LINE;

/** One line of at most MAX_LINE characters (short_line in Python). */
export function shortLine(text: string): string {
  const line = text.slice(0, PREVIEW_SOURCE).split(/\s+/).filter(Boolean).join(" ");
  const chars = Array.from(line);
  return chars.length <= MAX_LINE ? line : chars.slice(0, MAX_LINE - 1).join("").trimEnd() + "…";
}

/** Keep the finished row of a reply that ended with one of INBOX_ENDINGS (a reply ends once). */
export async function recordFinished(
  ctx: MutationCtx,
  reply: { messageId: string; userId: string; chatSessionId: string },
  status: MessageStatus,
  content: string,
  error: string | undefined,
  finishedAt: number,
) {
  if (!INBOX_ENDINGS.has(status)) return;
  const preview = shortLine(content || error || "");
  await ctx.db.insert("finishedReplies", { ...reply, status, preview, finishedAt });
}

/** Finished replies listed at once (MAX_FINISHED). */
export const MAX_FINISHED = 50;

/**
 * Where the next page of waiting requests starts: after the request created at
 * `request` of the machine created at `machine` (request 0: the machine's first).
 */
export const waitingCursor = v.object({ machine: v.number(), request: v.number() });
export type WaitingCursor = Infer<typeof waitingCursor>;

/** A machine looked through, or one of its waiting requests. */
type Candidate<R> = { machine: Doc<"machines">; request: R | null };

async function* machinesFrom(ctx: QueryCtx, userId: string | null, after: WaitingCursor | undefined) {
  const from = after?.machine ?? 0;
  yield* userId === null
    ? ctx.db.query("machines").withIndex("by_creation_time", (q) => q.gte("_creationTime", from))
    : ctx.db.query("machines").withIndex("by_userId", (q) => q.eq("userId", userId).gte("_creationTime", from));
}

async function* candidates<R>(
  ctx: QueryCtx,
  userId: string | null,
  after: WaitingCursor | undefined,
  pendingOf: (machineId: string, after: number) => AsyncIterable<R>,
): AsyncGenerator<Candidate<R>> {
  for await (const machine of machinesFrom(ctx, userId, after)) {
    const resumed = after !== undefined && machine._creationTime === after.machine;
    if (!resumed) yield { machine, request: null };
    yield* (async function* () {
      for await (const request of pendingOf(machine.machineId, resumed ? after.request : 0)) yield { machine, request };
    })();
  }
}

/**
 * One page of the requests waiting on `userId`'s machines (null: everyone's),
 * machine by machine, each machine's oldest first: at most MAX_PAGE requests
 * and machines looked through, and PAGE_BYTES of them, so a page of edits with
 * long diffs stays far under a call's read limit. The reader sorts the whole
 * list by age; `next` is where the following page starts (null: none follows).
 */
export async function waitingPage<R extends { _creationTime: number }>(
  ctx: QueryCtx,
  userId: string | null,
  after: WaitingCursor | undefined,
  pendingOf: (machineId: string, after: number) => AsyncIterable<R>,
): Promise<{ found: Array<{ machine: Doc<"machines">; request: R }>; next: WaitingCursor | null }> {
  const size = (c: Candidate<R>) => (c.request === null ? RECORD_OVERHEAD : LOOKUPS + getDocumentSize(c.request as unknown as Record<string, Value>));
  const { items, hasMore } = await cutPage(candidates(ctx, userId, after, pendingOf), MAX_PAGE, size);
  const last = items[items.length - 1];
  const next = hasMore ? { machine: last.machine._creationTime, request: last.request?._creationTime ?? 0 } : null;
  const found = items.flatMap((c) => (c.request === null ? [] : [{ machine: c.machine, request: c.request }]));
  return { found, next };
}
/** Estimated bytes of the session and worker a waiting request is listed with. */
const LOOKUPS = 4 * RECORD_OVERHEAD;

/** Where a listed request or reply runs, as the inbox and the notifier name it. */
export const placeFields = {
  machineId: v.string(),
  machineName: v.string(),
  workerId: v.string(),
  workerName: v.union(v.string(), v.null()),
  workerDirectory: v.string(),
};

/** The placeFields of a request or reply on `machine` for `worker`. */
export function place(machine: Doc<"machines">, worker: Doc<"workers">) {
  return {
    machineId: machine.machineId,
    machineName: machine.name,
    workerId: worker.workerId,
    workerName: worker.name ?? null,
    workerDirectory: worker.directory,
  };
}

/** A lookup of a record by its public ID (access.ts byPublicId), perhaps cached. */
type Lookup = <T extends PublicIdTable>(table: T, id: string) => Promise<Doc<T> | null>;

/** byPublicId that reads each record once per call of the function. */
export function cachedLookup(ctx: QueryCtx): Lookup {
  const cache = new Map<string, Promise<unknown>>();
  return <T extends PublicIdTable>(table: T, id: string) => {
    const key = `${table}/${id}`;
    if (!cache.has(key)) cache.set(key, byPublicId(ctx, table, id));
    return cache.get(key)! as Promise<Doc<T> | null>;
  };
}

/** A session with its worker and machine; null once any of them is gone (being deleted, access.ts). */
export async function sessionPlace(
  ctx: QueryCtx,
  chatSessionId: string,
  lookup: Lookup = (table, id) => byPublicId(ctx, table, id),
) {
  const session = await lookup("chatSessions", chatSessionId);
  const worker = session && (await lookup("workers", session.workerId));
  const machine = worker && (await lookup("machines", worker.machineId));
  return session && worker && machine ? { session, worker, machine } : null;
}

/** The arguments of a listWaiting query: the user (null: everyone) and where the page starts. */
const waitingArgs = {
  userId: v.union(v.string(), v.null()),
  after: v.optional(waitingCursor),
};

/** A waiting request as listWaiting lists it: `request` with its owner, machine and worker. */
function waitingValidator<R extends GenericValidator>(request: R) {
  return v.object({ userId: v.string(), request, ...placeFields });
}

/** What a listWaiting query returns: a page of requests as `request` validates them, and the next page's start. */
function waitingList<R extends GenericValidator>(request: R) {
  return v.object({ waiting: v.array(waitingValidator(request)), next: v.union(waitingCursor, v.null()) });
}

/**
 * One page of listWaiting (waitingPage) of the pending requests in `table`, each as `record`
 * makes it, with its owner, machine and worker; a request whose session or worker is gone is left out.
 */
async function waitingItems<Table extends RequestTable, T>(
  ctx: QueryCtx,
  table: Table,
  userId: string | null,
  after: WaitingCursor | undefined,
  record: (request: RequestDocs[Table]) => T,
) {
  const pendingOf = (machineId: string, from: number) =>
    ctx.db
      .query(table as RequestTable)
      .withIndex("by_machineId_and_status", (q) =>
        q.eq("machineId", machineId).eq("status", "pending").gt("_creationTime", from),
      ) as AsyncIterable<RequestDocs[Table]>;
  const { found, next } = await waitingPage(ctx, userId, after, pendingOf);
  const waiting = [];
  for (const { machine, request } of found) {
    const session = await sessionById(ctx, request.chatSessionId);
    const worker = session && (await workerById(ctx, session.workerId));
    if (!session || !worker) continue;
    waiting.push({ userId: session.userId, request: record(request), ...place(machine, worker) });
  }
  return { waiting, next };
}

/**
 * The listWaiting query of the requests in `table` (the server's only): one page of
 * waitingItems, each request as `record` makes it and `request` validates it.
 */
export function waitingQuery<Table extends RequestTable, R extends GenericValidator>(
  table: Table,
  request: R,
  record: (request: RequestDocs[Table]) => Infer<R>,
) {
  return serverQuery({
    args: waitingArgs,
    returns: waitingList(request),
    handler: async (ctx, { userId, after }) => {
      // Generic over `request`, TypeScript cannot see that waitingItems makes what waitingList validates.
      return (await waitingItems(ctx, table, userId, after, record)) as unknown as Infer<ReturnType<typeof waitingList<R>>>;
    },
  });
}
