/** Documents as the records the functions return (see validators.ts), and records as documents. */
import type { Doc, TableNames } from "../_generated/dataModel";
import type { MutationCtx } from "../_generated/server";
import type { PropertyValidators } from "convex/values";
import * as validators from "./validators";
import type {
  ApiTokenRecord,
  ChatChunkRecord,
  ChatMessageRecord,
  ChatSessionRecord,
  CommandRecord,
  FinishedReplyRecord,
  JobRecord,
  MachineRecord,
  NotificationSettingsRecord,
  OpenTurnMessage,
  PermissionPolicy,
  PermissionRecord,
  PushSubscriptionRecord,
  QuestionRecord,
  UserRecord,
  WorkerRecord,
} from "./validators";

/** Fields a record takes from its document unchanged: present there with a type the record accepts. */
type CopiedKey<D, R> = {
  [K in keyof R & keyof D]-?: D[K] extends R[K] ? K : never;
}[keyof R & keyof D];

/** What a record puts where its document leaves a field out (older documents). */
type Fallbacks<R, C extends keyof R> = { readonly [K in Exclude<keyof R, C>]-?: R[K] };

/** Fields whose record value may be null. */
type NullableKey<R> = { [K in keyof R]-?: null extends R[K] ? K : never }[keyof R];

/**
 * The builder for a record whose table stores the record's own fields (validators.ts `storedFields`,
 * schema.ts): each field is the document's value; one the document leaves out is its fallback, or
 * else null.
 */
function storedRecordOf<T extends TableNames, R>(validator: { fields: PropertyValidators }) {
  return (fallbacks: Fallbacks<R, CopiedKey<Doc<T>, R> | NullableKey<R>>) =>
    (doc: Doc<T>): R => {
      const fields = doc as unknown as Record<string, unknown>;
      const given = fallbacks as Record<string, unknown>;
      const record: Record<string, unknown> = {};
      for (const key of Object.keys(validator.fields)) record[key] = fields[key] ?? given[key] ?? null;
      return record as R;
    };
}

/** A record's type as its document stores it: a value that may be null may be absent instead. */
type StoredValues<R> = { [K in keyof R]: null extends R[K] ? Exclude<R[K], null> | undefined : R[K] };

/** A record's values as its document stores them: a null value is left out (validators.ts `storedFields`). */
export function storedValues<R extends object>(record: R): StoredValues<R> {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== null)) as StoredValues<R>;
}

/** The document after `changes`: patched, then read back (for the record a function returns). */
export async function patched<D extends Doc<TableNames>>(ctx: MutationCtx, doc: D, changes: Partial<D>): Promise<D> {
  // Generic over the table, TypeScript cannot match `changes` to one table's fields; D's own fields they are.
  await ctx.db.patch(doc._id, changes as Parameters<MutationCtx["db"]["patch"]>[1]);
  return (await ctx.db.get(doc._id)) as D;
}

/** Ask before bash, edits and fetches; nothing outside the worker's folder. */
export const DEFAULT_PERMISSION_POLICY: PermissionPolicy = {
  bash: "ask",
  edit: "ask",
  webfetch: "ask",
  externalDirectory: "deny",
};

export const userRecord = storedRecordOf<"users", UserRecord>(validators.userRecord)({});

export const machineRecord = storedRecordOf<"machines", MachineRecord>(validators.machineRecord)({});

export const workerRecord = storedRecordOf<"workers", WorkerRecord>(validators.workerRecord)({
  agents: [],
  commands: [],
  // Absent on workers from before policies existed: they get the safe defaults.
  permissionPolicy: DEFAULT_PERMISSION_POLICY,
});

export const chatSessionRecord = storedRecordOf<"chatSessions", ChatSessionRecord>(validators.chatSessionRecord)({
  undoRequests: 0,
  undoApplied: 0,
});

export const chatMessageRecord = storedRecordOf<"chatMessages", ChatMessageRecord>(validators.chatMessageRecord)({
  contentSegments: 0,
});

export const chatChunkRecord = storedRecordOf<"chatChunks", ChatChunkRecord>(validators.chatChunkRecord)({});

type PermissionFields = Omit<PermissionRecord, "file" | "diff" | "diffSize">;
const permissionFields = storedRecordOf<"permissionRequests", PermissionFields>(
  validators.permissionRecord.omit("file", "diff", "diffSize"),
)({});

export function permissionRecord(request: Doc<"permissionRequests">): PermissionRecord {
  // The diff fields appear only on edit requests, so they are left out rather than null.
  const record = permissionFields(request);
  return request.file === undefined
    ? record
    : { ...record, file: request.file, diff: request.diff, diffSize: request.diffSize };
}

export const questionRecord = storedRecordOf<"questionRequests", QuestionRecord>(validators.questionRecord)({});

export const commandRecord = storedRecordOf<"commands", CommandRecord>(validators.commandRecord)({});

export const jobRecord = storedRecordOf<"jobs", JobRecord>(validators.jobRecord)({});

export const apiTokenRecord = storedRecordOf<"apiTokens", ApiTokenRecord>(validators.apiTokenRecord)({});

export const pushSubscriptionRecord = storedRecordOf<"pushSubscriptions", PushSubscriptionRecord>(
  validators.pushSubscriptionRecord,
)({});

export const notificationSettingsRecord = storedRecordOf<"notificationSettings", NotificationSettingsRecord>(
  validators.notificationSettingsRecord,
)({});

export const finishedReplyRecord = storedRecordOf<"finishedReplies", FinishedReplyRecord>(
  validators.finishedReplyRecord,
)({});

export const openTurnMessage = storedRecordOf<"openTurns", OpenTurnMessage>(validators.openTurnMessage)({});
