/**
 * Validators shared by the schema and by the functions' `returns`: statuses,
 * and the records the functions hand back (the Python adapter's wire format).
 *
 * A record has exactly the fields of its domain class, camelCased; an absent
 * optional value is `null`, never missing, so both sides compare records whole.
 */
import {
  v,
  type GenericValidator,
  type Infer,
  type PropertyValidators,
  type Validator,
  type VNull,
  type VOptional,
  type VUnion,
} from "convex/values";

export const machineStatus = v.union(v.literal("online"), v.literal("offline"));
export const workerStatus = v.union(
  v.literal("pending_authorization"),
  v.literal("ready"),
  v.literal("online"),
  v.literal("offline"),
);
export const chatSessionStatus = v.union(
  v.literal("active"),
  v.literal("idle"),
  v.literal("terminated"),
);
export const messageRole = v.union(v.literal("user"), v.literal("assistant"));
export const messageStatus = v.union(
  v.literal("pending"),
  v.literal("processing"),
  v.literal("streaming"),
  v.literal("completed"),
  v.literal("failed"),
  v.literal("interrupted"),
  v.literal("aborted"),
);
export const permissionStatus = v.union(
  v.literal("pending"),
  v.literal("answered"),
  v.literal("resolved"),
  v.literal("expired"),
);
export const permissionAnswer = v.union(
  v.literal("once"),
  v.literal("always"),
  v.literal("reject"),
);

export const commandKind = v.union(v.literal("list_dir"), v.literal("mkdir"), v.literal("git_clone"));
export const commandStatus = v.union(
  v.literal("pending"),
  v.literal("running"),
  v.literal("done"),
  v.literal("failed"),
);
export const sessionMode = v.union(v.literal("new_session"), v.literal("same_session"));
export const jobRunStatus = v.union(
  v.literal("pending"),
  v.literal("running"),
  v.literal("done"),
  v.literal("failed"),
);
export const entryKind = v.union(v.literal("file"), v.literal("dir"), v.literal("symlink"), v.literal("other"));

/** What a command acts on (only the fields its kind reads are kept). */
export const commandArguments = v.object({
  path: v.string(),
  parents: v.boolean(),
  url: v.union(v.string(), v.null()),
  cursor: v.union(v.string(), v.null()),
});

/** What a command produced: its folder and, for list_dir, one page of entries. */
export const commandResult = v.object({
  path: v.string(),
  entries: v.array(
    v.object({
      name: v.string(),
      kind: entryKind,
      size: v.union(v.number(), v.null()),
      modified: v.union(v.number(), v.null()),
      isGitRepo: v.boolean(),
    }),
  ),
  total: v.number(),
  nextCursor: v.union(v.string(), v.null()),
});

export type WorkerStatus = Infer<typeof workerStatus>;
export type ChatSessionStatus = Infer<typeof chatSessionStatus>;
export type MessageStatus = Infer<typeof messageStatus>;

/** A value or null (a record's absent optional value). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function nullable<T extends Validator<any, "required", any>>(validator: T) {
  return v.union(validator, v.null());
}

/** A record's field as its document stores it: a field the record may hold as `null` is optional. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Stored<T> = T extends VUnion<any, [infer X extends Validator<any, "required", any>, VNull], "required", any>
  ? VOptional<X>
  : T;

/** A record's fields as its table stores them (schema.ts), so a field is declared once, here. */
export function storedFields<F extends PropertyValidators>(fields: F): { [K in keyof F]: Stored<F[K]> } {
  const stored: Record<string, GenericValidator> = {};
  for (const [key, field] of Object.entries(fields)) {
    const members = field.kind === "union" ? field.members : [];
    stored[key] = members.length === 2 && members[1].kind === "null" ? v.optional(members[0]) : field;
  }
  return stored as { [K in keyof F]: Stored<F[K]> };
}

/** What a machine process presents on every call: the two halves of its token. */
export const machineToken = {
  machineId: v.string(),
  machineSecret: v.string(),
};

/** What the web server presents on every call: the deployment's shared secret. */
export const serverCaller = {
  serverSecret: v.string(),
};

export const userRecord = v.object({
  userId: v.string(),
  username: v.string(),
  createdAt: v.number(),
});

export const machineRecord = v.object({
  machineId: v.string(),
  userId: v.string(),
  name: v.string(),
  status: machineStatus,
  createdAt: v.number(),
  lastHeartbeat: nullable(v.number()),
  rootDirectory: nullable(v.string()),
});

export const workerCounts = v.object({
  pending_authorization: v.number(),
  ready: v.number(),
  online: v.number(),
  offline: v.number(),
});

export const machineSummary = v.object({
  machine: machineRecord,
  workers: workerCounts,
});

/** What a worker's agent may do without asking; see orchestrator.domain.permissions. */
export const permissionAction = v.union(v.literal("ask"), v.literal("allow"), v.literal("deny"));
export const permissionPolicy = v.object({
  bash: permissionAction,
  edit: permissionAction,
  webfetch: permissionAction,
  externalDirectory: permissionAction,
});

export const workerRecord = v.object({
  workerId: v.string(),
  machineId: v.string(),
  directory: v.string(),
  status: workerStatus,
  createdAt: v.number(),
  name: nullable(v.string()),
  approvedAt: nullable(v.number()),
  approvedBy: nullable(v.string()),
  lastHeartbeat: nullable(v.number()),
  models: v.array(v.string()),
  agents: v.array(v.string()),
  commands: v.array(v.string()),
  permissionPolicy,
  /** Why its machine cannot run it (one sentence), until a heartbeat succeeds. */
  problem: nullable(v.string()),
});

export const chatSessionRecord = v.object({
  chatSessionId: v.string(),
  workerId: v.string(),
  userId: v.string(),
  model: v.string(),
  status: chatSessionStatus,
  createdAt: v.number(),
  lastActivity: v.number(),
  agentSessionId: nullable(v.string()),
  title: nullable(v.string()),
  /** The agent (mode) its messages use unless a message names another. */
  agent: nullable(v.string()),
  /** Undo and redo of turns (orchestrator/domain/undo.py): the first reply undone, … */
  undoneFrom: nullable(v.string()),
  undoAgentId: nullable(v.string()),
  undoneAt: nullable(v.number()),
  undoRequests: v.number(),
  undoApplied: v.number(),
  undoError: nullable(v.string()),
});

export const chatMessageRecord = v.object({
  messageId: v.string(),
  chatSessionId: v.string(),
  role: messageRole,
  content: v.string(),
  status: messageStatus,
  timestamp: v.number(),
  replyTo: nullable(v.string()),
  error: nullable(v.string()),
  abortRequested: v.boolean(),
  /** 0, or how many segments hold the content (then `content` is ""; read them with messageText). */
  contentSegments: v.number(),
  /** A user message's agent (mode), when the user chose one. */
  agent: nullable(v.string()),
  /** A reply's model: its session's model when the machine claimed the message. */
  model: nullable(v.string()),
});

/** A typed part of a reply as stored and as returned (parts.ts), apart from how its text is kept. */
export const partFields = {
  partId: v.string(),
  messageId: v.string(),
  chatSessionId: v.string(),
  position: v.number(),
  type: v.string(),
  text: v.string(),
  // The part's other fields as JSON (orchestrator/adapters/parts_json.py).
  data: v.string(),
  updatedAt: v.number(),
  // The session's sequence at the part's last change (shared with its chunks).
  sequence: v.number(),
};

/** A streamed piece of a reply. */
export const chatChunkRecord = v.object({
  chunkId: v.string(),
  messageId: v.string(),
  chatSessionId: v.string(),
  chunk: v.string(),
  sequence: v.number(),
  timestamp: v.number(),
  // The text part it grows and the character its text starts at (parts.ts).
  partId: nullable(v.string()),
  offset: nullable(v.number()),
});

export const permissionRecord = v.object({
  permissionId: v.string(),
  chatSessionId: v.string(),
  messageId: v.string(),
  agentRequestId: v.string(),
  tool: v.string(),
  description: v.string(),
  status: permissionStatus,
  createdAt: v.number(),
  answer: nullable(permissionAnswer),
  // An edit's file and its diff, at most MAX_DIFF_BYTES (lib/rules.ts); absent for other tools.
  file: v.optional(v.string()),
  diff: v.optional(v.string()),
  diffSize: v.optional(v.number()),
});

/** A question the agent asks; see orchestrator.domain.questions. */
export const question = v.object({
  question: v.string(),
  header: v.string(),
  options: v.array(v.object({ label: v.string(), description: v.string() })),
  multiple: v.boolean(),
  custom: v.boolean(),
});

export const questionRecord = v.object({
  questionId: v.string(),
  chatSessionId: v.string(),
  messageId: v.string(),
  agentRequestId: v.string(),
  questions: v.array(question),
  status: permissionStatus,
  createdAt: v.number(),
  answers: nullable(v.array(v.array(v.string()))),
  dismissed: v.boolean(),
});

export const sessionWork = v.object({
  session: chatSessionRecord,
  pendingMessages: v.array(chatMessageRecord),
  streamingReply: nullable(chatMessageRecord),
  answeredPermissions: v.array(permissionRecord),
  answeredQuestions: v.array(questionRecord),
});

/** A directory command a user sends to a machine. */
export const commandRecord = v.object({
  commandId: v.string(),
  machineId: v.string(),
  userId: v.string(),
  kind: commandKind,
  arguments: commandArguments,
  status: commandStatus,
  // 0-100 (the last progress line the machine reported is `progressLine`).
  progress: v.number(),
  cancelRequested: v.boolean(),
  createdAt: v.number(),
  progressLine: nullable(v.string()),
  result: nullable(commandResult),
  error: nullable(v.string()),
  startedAt: nullable(v.number()),
  finishedAt: nullable(v.number()),
});

/** What the owner chooses for a job besides its worker: stored, returned and sent alike. */
export const jobSettings = {
  name: v.string(),
  model: v.string(),
  prompt: v.string(),
  cron: v.string(),
  timezone: v.string(),
  enabled: v.boolean(),
  sessionMode: sessionMode,
};

export const jobRecord = v.object({
  jobId: v.string(),
  userId: v.string(),
  /** Null once the worker was removed (the job is then paused with a reason). */
  workerId: nullable(v.string()),
  ...jobSettings,
  createdAt: v.number(),
  /** Null: not scheduled. */
  nextRunAt: nullable(v.number()),
  /** The session same_session runs append to, once the first run made it. */
  chatSessionId: nullable(v.string()),
  pausedReason: nullable(v.string()),
});

export const jobRunRecord = v.object({
  runId: v.string(),
  jobId: v.string(),
  scheduledFor: v.number(),
  createdAt: v.number(),
  status: jobRunStatus,
  chatSessionId: nullable(v.string()),
  messageId: nullable(v.string()),
  finishedAt: nullable(v.number()),
  error: nullable(v.string()),
});

/** A user API token, without its hash (apiTokens.ts). */
export const apiTokenRecord = v.object({
  tokenId: v.string(),
  userId: v.string(),
  name: v.string(),
  createdAt: v.number(),
  lastUsedAt: nullable(v.number()),
});

/** A browser's Web Push subscription (notifications.ts). */
export const pushSubscriptionRecord = v.object({
  userId: v.string(),
  endpoint: v.string(),
  p256dh: v.string(),
  auth: v.string(),
  createdAt: v.number(),
});

/** Which events a user is notified about, and their quiet hours (notifications.ts). */
export const notificationSettingsRecord = v.object({
  events: v.array(v.string()),
  quietStart: nullable(v.string()),
  quietEnd: nullable(v.string()),
  timeZone: v.string(),
});

/** A reply that ended, as the inbox keeps it (lib/inbox.ts), without where it ran. */
export const finishedReplyRecord = v.object({
  userId: v.string(),
  messageId: v.string(),
  chatSessionId: v.string(),
  status: v.string(),
  preview: v.string(),
  finishedAt: v.number(),
});

/** A message that has not finished, without its text (lib/turns.ts). */
export const openTurnMessage = chatMessageRecord.pick(
  "messageId", "chatSessionId", "role", "status", "timestamp", "replyTo",
);

/** What the owner fills in for a job (already checked by the web server's Python rules). */
export const jobDraft = v.object({ workerId: v.string(), ...jobSettings });

export type SessionMode = Infer<typeof sessionMode>;
export type JobRunStatus = Infer<typeof jobRunStatus>;
export type JobRecord = Infer<typeof jobRecord>;
export type JobRunRecord = Infer<typeof jobRunRecord>;
export type JobDraft = Infer<typeof jobDraft>;
export type UserRecord = Infer<typeof userRecord>;
export type CommandRecord = Infer<typeof commandRecord>;
export type MachineRecord = Infer<typeof machineRecord>;
export type WorkerRecord = Infer<typeof workerRecord>;
export type PermissionPolicy = Infer<typeof permissionPolicy>;
export type ChatSessionRecord = Infer<typeof chatSessionRecord>;
export type ChatMessageRecord = Infer<typeof chatMessageRecord>;
export type ChatChunkRecord = Infer<typeof chatChunkRecord>;
export type PermissionRecord = Infer<typeof permissionRecord>;
export type QuestionRecord = Infer<typeof questionRecord>;
export type ApiTokenRecord = Infer<typeof apiTokenRecord>;
export type PushSubscriptionRecord = Infer<typeof pushSubscriptionRecord>;
export type NotificationSettingsRecord = Infer<typeof notificationSettingsRecord>;
export type FinishedReplyRecord = Infer<typeof finishedReplyRecord>;
export type OpenTurnMessage = Infer<typeof openTurnMessage>;
export type Question = Infer<typeof question>;
