/**
 * `orchestrator import` into Convex: exported records stored under their own IDs.
 *
 * One call stores one batch of one type (the Python side sends at most 100 records or
 * about 2 MB of text). A record whose ID is already stored is left alone, so an
 * interrupted import runs again without duplicates. Machines get the hash of the new
 * secret the importer generated (tokens cannot move: only their hash is stored).
 */
import { mutation, type MutationCtx } from "./_generated/server";
import { v, type Infer } from "convex/values";
import { userByName, withPublicId, type PublicIdTable } from "./lib/access";
import { hashSecret, requireServer } from "./lib/auth";
import { fail } from "./lib/errors";
import { insertContent } from "./lib/text";
import { trackTurn } from "./lib/turns";
import { ensureRoomForWorker } from "./workers";
import {
  chatMessageRecord,
  chatSessionRecord,
  jobRecord,
  jobRunRecord,
  jobRunStatus,
  machineRecord,
  nullable,
  serverCaller,
  userRecord,
  workerRecord,
} from "./lib/validators";

const some = <T>(value: T | null): T | undefined =>
  value === null ? undefined : value;

// An exported record is the record the functions return, minus what the import derives again.
const user = userRecord.extend({ passwordHash: v.string() });
const machine = machineRecord
  .pick("machineId", "userId", "name", "createdAt", "rootDirectory")
  .extend({ secret: v.string() });
const worker = workerRecord.pick(
  "workerId", "machineId", "name", "directory", "status", "createdAt", "approvedAt", "approvedBy", "models",
);
const session = chatSessionRecord.pick(
  "chatSessionId", "workerId", "userId", "model", "status", "createdAt", "lastActivity", "title",
);
const message = chatMessageRecord.pick(
  "messageId", "chatSessionId", "role", "content", "status", "timestamp", "replyTo", "error",
);
const job = jobRecord;
// An exported run may have no status yet (stored as absent).
const run = jobRunRecord.omit("status").extend({ status: nullable(jobRunStatus) });

const batch = v.union(
  v.object({ kind: v.literal("user"), records: v.array(user) }),
  v.object({ kind: v.literal("machine"), records: v.array(machine) }),
  v.object({ kind: v.literal("worker"), records: v.array(worker) }),
  v.object({ kind: v.literal("session"), records: v.array(session) }),
  v.object({ kind: v.literal("message"), records: v.array(message) }),
  v.object({ kind: v.literal("job"), records: v.array(job) }),
  v.object({ kind: v.literal("run"), records: v.array(run) }),
);

/** The same sentence as `taken` in orchestrator/application/transfer.py. */
function taken(username: string): string {
  return `The username '${username}' is already used by another account here. Import into an empty backend, before creating any account.`;
}

function missing(kind: string, id: string): never {
  fail(
    "InvalidInput",
    `The ${kind} ${id} refers to a record that is not in the file.`,
  );
}

async function storeOne(
  ctx: MutationCtx,
  { kind, records }: Infer<typeof batch>,
): Promise<string[]> {
  const stored: string[] = [];
  const db = ctx.db;
  const found = <T extends PublicIdTable>(table: T, id: string) => withPublicId(ctx, table, id).first();
  for (const record of records) {
    switch (kind) {
      case "user": {
        const r = record as Infer<typeof user>;
        if (await found("users", r.userId)) continue;
        const sameName = await userByName(ctx, r.username);
        if (sameName) fail("InvalidInput", taken(r.username));
        await db.insert("users", r);
        stored.push(r.userId);
        break;
      }
      case "machine": {
        const { secret, rootDirectory, ...r } = record as Infer<typeof machine>;
        if (await found("machines", r.machineId)) continue;
        if (!(await found("users", r.userId))) missing(kind, r.machineId);
        await db.insert("machines", {
          ...r,
          rootDirectory: some(rootDirectory),
          status: "offline",
          secretHash: await hashSecret(secret),
        });
        stored.push(r.machineId);
        break;
      }
      case "worker": {
        const { name, approvedAt, approvedBy, ...r } = record as Infer<
          typeof worker
        >;
        if (await found("workers", r.workerId)) continue;
        const owner = await found("machines", r.machineId);
        if (!owner) missing(kind, r.workerId);
        await ensureRoomForWorker(ctx, r.machineId);
        await db.insert("workers", {
          ...r,
          userId: owner.userId,
          name: some(name),
          approvedAt: some(approvedAt),
          approvedBy: some(approvedBy),
        });
        stored.push(r.workerId);
        break;
      }
      case "session": {
        const { title, ...r } = record as Infer<typeof session>;
        if (await found("chatSessions", r.chatSessionId)) continue;
        const of = await found("workers", r.workerId);
        if (!of) missing(kind, r.chatSessionId);
        await db.insert("chatSessions", {
          ...r,
          machineId: of.machineId,
          title: some(title),
          lastSequence: 0,
        });
        stored.push(r.chatSessionId);
        break;
      }
      case "message": {
        const { replyTo, error, content, ...r } = record as Infer<typeof message>;
        if (await found("chatMessages", r.messageId)) continue;
        const of = await found("chatSessions", r.chatSessionId);
        if (!of) missing(kind, r.messageId);
        await db.insert("chatMessages", {
          ...r,
          ...(await insertContent(ctx, r.messageId, r.chatSessionId, content)),
          machineId: of.machineId,
          replyTo: some(replyTo),
          error: some(error),
          abortRequested: false,
        });
        await trackTurn(ctx, { ...r, machineId: of.machineId, replyTo: some(replyTo) });
        stored.push(r.messageId);
        break;
      }
      case "job": {
        const { workerId, nextRunAt, chatSessionId, pausedReason, ...r } =
          record as Infer<typeof job>;
        if (await found("jobs", r.jobId)) continue;
        await db.insert("jobs", {
          ...r,
          workerId: some(workerId),
          nextRunAt: some(nextRunAt),
          chatSessionId: some(chatSessionId),
          pausedReason: some(pausedReason),
        });
        stored.push(r.jobId);
        break;
      }
      case "run": {
        const { status, chatSessionId, messageId, finishedAt, error, ...r } =
          record as Infer<typeof run>;
        if (await found("jobRuns", r.runId)) continue;
        const of = await found("jobs", r.jobId);
        if (!of) missing(kind, r.runId);
        await db.insert("jobRuns", {
          ...r,
          userId: of.userId,
          status: some(status),
          chatSessionId: some(chatSessionId),
          messageId: some(messageId),
          finishedAt: some(finishedAt),
          error: some(error),
        });
        stored.push(r.runId);
        break;
      }
    }
  }
  return stored;
}

/** Store a batch of exported records of one type; returns the IDs stored (the others existed). */
export const restore = mutation({
  args: { ...serverCaller, batch },
  returns: v.array(v.string()),
  handler: async (ctx, { serverSecret, batch }) => {
    requireServer(serverSecret);
    return await storeOne(ctx, batch);
  },
});
