/** Documents as the records the functions return (see validators.ts). */
import type { Doc, TableNames } from "../_generated/dataModel";
import type { PropertyValidators } from "convex/values";
import { chatMessageRecord as chatMessageValidator } from "./validators";
import type {
  ChatChunkRecord,
  ChatMessageRecord,
  ChatSessionRecord,
  CommandRecord,
  JobRecord,
  MachineRecord,
  PermissionPolicy,
  PermissionRecord,
  QuestionRecord,
  UserRecord,
  WorkerRecord,
} from "./validators";

/** Fields a record takes from its document unchanged: present there with a type the record accepts. */
type CopiedKey<D, R> = {
  [K in keyof R & keyof D]-?: D[K] extends R[K] ? K : never;
}[keyof R & keyof D];

/** What a record puts where its document leaves a field out (older documents, optional fields). */
type Fallbacks<R, C extends keyof R> = { readonly [K in Exclude<keyof R, C>]-?: R[K] };

/**
 * One builder for every record: the copied fields come over as they are, every other field of
 * the record is the document's value or, when the document has none, its fallback.
 */
function recordOf<T extends TableNames, R>() {
  return <C extends CopiedKey<Doc<T>, R>>(copied: readonly C[], fallbacks: Fallbacks<R, C>) =>
    (doc: Doc<T>): R => {
      const fields = doc as unknown as Record<string, unknown>;
      const record: Record<string, unknown> = {};
      for (const key of copied) record[key as string] = fields[key as string];
      for (const [key, fallback] of Object.entries(fallbacks)) record[key] = fields[key] ?? fallback;
      return record as R;
    };
}

/** Fields whose record value may be null. */
type NullableKey<R> = { [K in keyof R]-?: null extends R[K] ? K : never }[keyof R];

/**
 * The builder for a record whose table stores the record's own fields (validators.ts `storedFields`):
 * each field is the document's value; one the document leaves out is its fallback, or else null.
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

/** Ask before bash, edits and fetches; nothing outside the worker's folder. */
export const DEFAULT_PERMISSION_POLICY: PermissionPolicy = {
  bash: "ask",
  edit: "ask",
  webfetch: "ask",
  externalDirectory: "deny",
};

export const userRecord = recordOf<"users", UserRecord>()(["userId", "username", "createdAt"], {});

export const machineRecord = recordOf<"machines", MachineRecord>()(
  ["machineId", "userId", "name", "status", "createdAt"],
  { lastHeartbeat: null, rootDirectory: null },
);

export const workerRecord = recordOf<"workers", WorkerRecord>()(
  ["workerId", "machineId", "directory", "status", "createdAt", "models"],
  {
    name: null,
    approvedAt: null,
    approvedBy: null,
    lastHeartbeat: null,
    agents: [],
    commands: [],
    // Absent on workers from before policies existed: they get the safe defaults.
    permissionPolicy: DEFAULT_PERMISSION_POLICY,
    problem: null,
  },
);

export const chatSessionRecord = recordOf<"chatSessions", ChatSessionRecord>()(
  ["chatSessionId", "workerId", "userId", "model", "status", "createdAt", "lastActivity"],
  {
    agentSessionId: null,
    title: null,
    agent: null,
    undoneFrom: null,
    undoAgentId: null,
    undoneAt: null,
    undoRequests: 0,
    undoApplied: 0,
    undoError: null,
  },
);

export const chatMessageRecord = storedRecordOf<"chatMessages", ChatMessageRecord>(chatMessageValidator)({
  contentSegments: 0,
});

export const chatChunkRecord = recordOf<"chatChunks", ChatChunkRecord>()(
  ["chunkId", "messageId", "chatSessionId", "chunk", "sequence", "timestamp"],
  { partId: null, offset: null },
);

const permissionFields = recordOf<"permissionRequests", Omit<PermissionRecord, "file" | "diff" | "diffSize">>()(
  ["permissionId", "chatSessionId", "messageId", "agentRequestId", "tool", "description", "status", "createdAt"],
  { answer: null },
);

export function permissionRecord(request: Doc<"permissionRequests">): PermissionRecord {
  // The diff fields appear only on edit requests, so they are left out rather than null.
  const record = permissionFields(request);
  return request.file === undefined
    ? record
    : { ...record, file: request.file, diff: request.diff, diffSize: request.diffSize };
}

export const questionRecord = recordOf<"questionRequests", QuestionRecord>()(
  ["questionId", "chatSessionId", "messageId", "agentRequestId", "questions", "status", "createdAt", "dismissed"],
  { answers: null },
);

export const commandRecord = recordOf<"commands", CommandRecord>()(
  ["commandId", "machineId", "userId", "kind", "arguments", "status", "createdAt", "progress", "cancelRequested"],
  { progressLine: null, result: null, error: null, startedAt: null, finishedAt: null },
);

export const jobRecord = recordOf<"jobs", JobRecord>()(
  ["jobId", "userId", "name", "model", "prompt", "cron", "timezone", "enabled", "sessionMode", "createdAt"],
  { workerId: null, nextRunAt: null, chatSessionId: null, pausedReason: null },
);
