/**
 * `orchestrator import` into Convex: exported records stored under their own IDs.
 *
 * One call stores one batch of one type (the Python side sends at most 100 records or
 * about 2 MB of text). A record whose ID is already stored is left alone, so an
 * interrupted import runs again without duplicates. Machines get the hash of the new
 * secret the importer generated (tokens cannot move: only their hash is stored).
 */
import type { MutationCtx } from "./_generated/server";
import { v, type Infer } from "convex/values";
import { serverMutation } from "./lib/functions";
import { publicIdOf, userByName, withPublicId, type PublicIdTable } from "./lib/access";
import { hashSecret } from "./lib/auth";
import { fail } from "./lib/errors";
import { storedValues } from "./lib/records";
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
  userRecord,
  workerRecord,
} from "./lib/validators";

// An exported record is the record the functions return, minus what the import derives again.
const user = userRecord.extend({ passwordHash: v.string() });
const machine = machineRecord
  .pick("machineId", "userId", "name", "createdAt", "rootDirectory")
  .extend({ secret: v.string() });
const worker = workerRecord.pick(
  "workerId", "machineId", "name", "directory", "status", "createdAt", "approvedAt", "approvedBy", "models",
);
const session = chatSessionRecord.pick(
  "chatSessionId", "workerId", "userId", "model", "status", "createdAt", "lastActivity", "title", "agent",
);
const message = chatMessageRecord.pick(
  "messageId", "chatSessionId", "role", "content", "status", "timestamp", "replyTo", "error", "agent", "model",
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

/** The table each kind of record is stored in. */
const TABLE = {
  user: "users",
  machine: "machines",
  worker: "workers",
  session: "chatSessions",
  message: "chatMessages",
  job: "jobs",
  run: "jobRuns",
} as const satisfies Record<Infer<typeof batch>["kind"], PublicIdTable>;

async function storeOne(
  ctx: MutationCtx,
  { kind, records }: Infer<typeof batch>,
): Promise<string[]> {
  const stored: string[] = [];
  const db = ctx.db;
  const found = <T extends PublicIdTable>(table: T, id: string) => withPublicId(ctx, table, id).first();
  for (const record of records) {
    const id = publicIdOf(TABLE[kind], record);
    if (await found(TABLE[kind], id)) continue;
    // The stored record this one refers to: without it the batch is refused.
    const parent = async <T extends PublicIdTable>(table: T, parentId: string) =>
      (await found(table, parentId)) ?? missing(kind, id);
    switch (kind) {
      case "user": {
        const r = record as Infer<typeof user>;
        const sameName = await userByName(ctx, r.username);
        if (sameName) fail("InvalidInput", taken(r.username));
        await db.insert("users", r);
        break;
      }
      case "machine": {
        const { secret, ...r } = record as Infer<typeof machine>;
        await parent("users", r.userId);
        await db.insert("machines", {
          ...storedValues(r),
          status: "offline",
          secretHash: await hashSecret(secret),
        });
        break;
      }
      case "worker": {
        const r = record as Infer<typeof worker>;
        const owner = await parent("machines", r.machineId);
        await ensureRoomForWorker(ctx, r.machineId);
        await db.insert("workers", { ...storedValues(r), userId: owner.userId });
        break;
      }
      case "session": {
        const r = record as Infer<typeof session>;
        const of = await parent("workers", r.workerId);
        await db.insert("chatSessions", { ...storedValues(r), machineId: of.machineId, lastSequence: 0 });
        break;
      }
      case "message": {
        const { content, ...r } = record as Infer<typeof message>;
        const of = await parent("chatSessions", r.chatSessionId);
        const fields = { ...storedValues(r), machineId: of.machineId };
        await db.insert("chatMessages", {
          ...fields,
          ...(await insertContent(ctx, r.messageId, r.chatSessionId, content)),
          abortRequested: false,
        });
        await trackTurn(ctx, fields);
        break;
      }
      case "job": {
        await db.insert("jobs", storedValues(record as Infer<typeof job>));
        break;
      }
      case "run": {
        const r = record as Infer<typeof run>;
        const of = await parent("jobs", r.jobId);
        await db.insert("jobRuns", { ...storedValues(r), userId: of.userId });
        break;
      }
    }
    stored.push(id);
  }
  return stored;
}

/** Store a batch of exported records of one type; returns the IDs stored (the others existed). */
export const restore = serverMutation({
  args: { batch },
  returns: v.array(v.string()),
  handler: async (ctx, { batch }) => {
    return await storeOne(ctx, batch);
  },
});
