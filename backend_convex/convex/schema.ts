/**
 * Every table of the orchestrator, and only here.
 *
 * Records carry their own public ID (`mch_…`, `wrk_…`, …) as a string field
 * with a `by_<field>` index, the same shape the embedded backend uses, so IDs
 * and worker tokens look alike on both backends and an ID that was never
 * issued is simply "not found" rather than a validator error. Timestamps are
 * milliseconds since the Unix epoch (UTC). Order "oldest first" is the
 * index's `_creationTime` order, the equivalent of SQLite's rowid.
 */
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
import {
  chatMessageRecord,
  chatSessionStatus,
  chunkFields,
  commandFields,
  commandResult,
  jobRunStatus,
  jobSettings,
  machineStatus,
  messageRole,
  messageStatus,
  partFields,
  permissionAnswer,
  permissionPolicy,
  permissionStatus,
  question,
  storedFields,
  workerStatus,
} from "./lib/validators";

export default defineSchema({
  users: defineTable({
    userId: v.string(),
    username: v.string(),
    /** An argon2 hash computed by the web server; never a password. */
    passwordHash: v.string(),
    createdAt: v.number(),
  })
    .index("by_userId", ["userId"])
    .index("by_username", ["username"]),

  machines: defineTable({
    machineId: v.string(),
    userId: v.string(),
    name: v.string(),
    /** Hex SHA-256 of the machine secret (see lib/auth.ts for why not a slow hash). */
    secretHash: v.string(),
    status: machineStatus,
    createdAt: v.number(),
    lastHeartbeat: v.optional(v.number()),
    rootDirectory: v.optional(v.string()),
    /** The machine process holding the machine's lease, and until when (domain/lease.py). */
    instanceId: v.optional(v.string()),
    leaseUntil: v.optional(v.number()),
  })
    .index("by_machineId", ["machineId"])
    .index("by_userId", ["userId"])
    .index("by_status_and_lastHeartbeat", ["status", "lastHeartbeat"]),

  workers: defineTable({
    workerId: v.string(),
    machineId: v.string(),
    /** The machine's owner, copied so pending workers list by user through an index. */
    userId: v.string(),
    name: v.optional(v.string()),
    directory: v.string(),
    status: workerStatus,
    createdAt: v.number(),
    approvedAt: v.optional(v.number()),
    approvedBy: v.optional(v.string()),
    lastHeartbeat: v.optional(v.number()),
    models: v.array(v.string()),
    /** The agents (modes) and slash commands its agent offers; absent: none reported yet. */
    agents: v.optional(v.array(v.string())),
    commands: v.optional(v.array(v.string())),
    /** Absent: the safe default policy (records.ts DEFAULT_PERMISSION_POLICY). */
    permissionPolicy: v.optional(permissionPolicy),
    /** Why its machine cannot run it (one sentence), until a heartbeat succeeds. */
    problem: v.optional(v.string()),
  })
    .index("by_workerId", ["workerId"])
    .index("by_machineId", ["machineId"])
    .index("by_machineId_and_status", ["machineId", "status"])
    .index("by_userId_and_status", ["userId", "status"]),

  /** Worker tokens issued by an owner; a used one stays, so it can never register twice. */
  workerTokens: defineTable({
    workerId: v.string(),
    machineId: v.string(),
    createdAt: v.number(),
    usedAt: v.optional(v.number()),
  })
    .index("by_workerId", ["workerId"])
    .index("by_machineId", ["machineId"]),

  chatSessions: defineTable({
    chatSessionId: v.string(),
    workerId: v.string(),
    /** The worker's machine, copied so a machine's work list reads one index. */
    machineId: v.string(),
    userId: v.string(),
    model: v.string(),
    status: chatSessionStatus,
    createdAt: v.number(),
    lastActivity: v.number(),
    agentSessionId: v.optional(v.string()),
    title: v.optional(v.string()),
    /** The agent (mode) its messages use unless a message names another. */
    agent: v.optional(v.string()),
    /** Undo and redo of turns (orchestrator/domain/undo.py): the first reply undone, … */
    undoneFrom: v.optional(v.string()),
    undoAgentId: v.optional(v.string()),
    undoneAt: v.optional(v.number()),
    undoRequests: v.optional(v.number()),
    undoApplied: v.optional(v.number()),
    undoError: v.optional(v.string()),
    /** The sequence of the session's last chunk: chunks are numbered 1, 2, … */
    lastSequence: v.number(),
  })
    .index("by_chatSessionId", ["chatSessionId"])
    .index("by_workerId", ["workerId"])
    .index("by_workerId_and_status_and_lastActivity", ["workerId", "status", "lastActivity"])
    .index("by_machineId", ["machineId"])
    .index("by_machineId_and_status", ["machineId", "status"]),

  questionRequests: defineTable({
    questionId: v.string(),
    chatSessionId: v.string(),
    messageId: v.string(),
    machineId: v.string(),
    agentRequestId: v.string(),
    questions: v.array(question),
    status: permissionStatus,
    createdAt: v.number(),
    answers: v.optional(v.array(v.array(v.string()))),
    dismissed: v.boolean(),
  })
    .index("by_questionId", ["questionId"])
    .index("by_chatSessionId_and_status", ["chatSessionId", "status"])
    .index("by_messageId_and_status", ["messageId", "status"])
    .index("by_machineId_and_status", ["machineId", "status"])
    .index("by_chatSessionId", ["chatSessionId"]),

  /** The fields of chatMessageRecord (lib/validators.ts), each nullable one optional, and: */
  chatMessages: defineTable({
    ...storedFields(chatMessageRecord.fields),
    machineId: v.string(),
    /** Set when the content is too long for this document: it is in `textSegments` (lib/text.ts). */
    contentSegments: v.optional(v.number()),
  })
    .index("by_messageId", ["messageId"])
    .index("by_chatSessionId", ["chatSessionId"])
    .index("by_chatSessionId_and_status", ["chatSessionId", "status"])
    .index("by_machineId_and_status", ["machineId", "status"])
    /** A job run finds its question's reply here. */
    .index("by_replyTo", ["replyTo"]),

  chatChunks: defineTable({
    ...chunkFields,
    // The text part it grows and the character its text starts at (parts.ts).
    partId: v.optional(v.string()),
    offset: v.optional(v.number()),
  })
    .index("by_chatSessionId_and_sequence", ["chatSessionId", "sequence"])
    .index("by_messageId_and_sequence", ["messageId", "sequence"])
    .index("by_messageId_and_partId_and_offset", ["messageId", "partId", "offset"]),

  // The text of a message too long for one document, in order (lib/text.ts).
  textSegments: defineTable({
    messageId: v.string(),
    chatSessionId: v.string(),
    // "" for the message's content, else the part whose text it holds.
    partId: v.string(),
    index: v.number(),
    text: v.string(),
  })
    .index("by_messageId_and_partId_and_index", ["messageId", "partId", "index"])
    .index("by_chatSessionId", ["chatSessionId"]),

  // The typed parts of replies (parts.ts); a text part's text grows by deltas.
  messageParts: defineTable({
    ...partFields,
    // A text part streams as chunks; the others are read by sequence (parts.changedAfter).
    isText: v.boolean(),
    // A text part whose streamed chunks are not merged into `text` yet (until its reply ends).
    unmerged: v.optional(v.boolean()),
    // Set when the text is too long for this document: it is in `textSegments` (lib/text.ts).
    textSegments: v.optional(v.number()),
  })
    .index("by_messageId_and_partId", ["messageId", "partId"])
    .index("by_messageId_and_position", ["messageId", "position"])
    .index("by_chatSessionId_and_position", ["chatSessionId", "position"])
    .index("by_chatSessionId_and_isText_and_sequence", ["chatSessionId", "isText", "sequence"]),

  permissionRequests: defineTable({
    permissionId: v.string(),
    chatSessionId: v.string(),
    messageId: v.string(),
    machineId: v.string(),
    agentRequestId: v.string(),
    tool: v.string(),
    description: v.string(),
    status: permissionStatus,
    createdAt: v.number(),
    answer: v.optional(permissionAnswer),
    // An edit's file and its diff, at most MAX_DIFF_BYTES (lib/rules.ts); absent for other tools.
    file: v.optional(v.string()),
    diff: v.optional(v.string()),
    diffSize: v.optional(v.number()),
  })
    .index("by_permissionId", ["permissionId"])
    .index("by_chatSessionId_and_status", ["chatSessionId", "status"])
    .index("by_messageId_and_status", ["messageId", "status"])
    .index("by_machineId_and_status", ["machineId", "status"])
    .index("by_chatSessionId", ["chatSessionId"]),

  /** Directory commands a user sends to a machine (list_dir, mkdir, git_clone). */
  commands: defineTable({
    ...commandFields,
    /** The last progress line the machine reported. */
    progressLine: v.optional(v.string()),
    result: v.optional(commandResult),
    error: v.optional(v.string()),
    startedAt: v.optional(v.number()),
    finishedAt: v.optional(v.number()),
  })
    .index("by_commandId", ["commandId"])
    .index("by_machineId", ["machineId"])
    .index("by_machineId_and_status", ["machineId", "status"]),

  /**
   * Scheduled jobs: a prompt sent to a worker on a cron schedule. The next
   * due time is computed by the web server (Python) or the deployment's cron
   * (jobsScheduler.runDue); a job only stores its next due time, and `nextRunAt` absent means "not scheduled".
   */
  jobs: defineTable({
    jobId: v.string(),
    userId: v.string(),
    /** Absent once the worker was removed (the job is then paused with a reason). */
    workerId: v.optional(v.string()),
    ...jobSettings,
    createdAt: v.number(),
    nextRunAt: v.optional(v.number()),
    /** The session same_session runs append to, once the first run made it. */
    chatSessionId: v.optional(v.string()),
    pausedReason: v.optional(v.string()),
  })
    .index("by_jobId", ["jobId"])
    .index("by_userId", ["userId"])
    .index("by_workerId", ["workerId"])
    .index("by_enabled_and_nextRunAt", ["enabled", "nextRunAt"]),

  /**
   * One run per due time of a job. `status` is absent while the run's status
   * follows its message and reply (lib/jobs.ts); it is stored when the run
   * failed to start, or frozen when its worker (and so its messages) went away.
   */
  jobRuns: defineTable({
    runId: v.string(),
    jobId: v.string(),
    userId: v.string(),
    scheduledFor: v.number(),
    createdAt: v.number(),
    status: v.optional(jobRunStatus),
    chatSessionId: v.optional(v.string()),
    messageId: v.optional(v.string()),
    finishedAt: v.optional(v.number()),
    error: v.optional(v.string()),
  })
    .index("by_runId", ["runId"])
    .index("by_jobId", ["jobId"])
    .index("by_jobId_and_status", ["jobId", "status"])
    .index("by_jobId_and_scheduledFor", ["jobId", "scheduledFor"]),

  /**
   * A browser signed in to an account. The session cookie carries the id;
   * signing out, "sign out everywhere" and a new password delete rows, and a
   * cookie whose row is gone no longer signs anyone in.
   */
  signIns: defineTable({
    signInId: v.string(),
    userId: v.string(),
    createdAt: v.number(),
  })
    .index("by_signInId", ["signInId"])
    .index("by_userId", ["userId"]),

  /**
   * User API tokens: a script signs in with `oat_<tokenId>:sec_<secret>`; only the
   * secret's SHA-256 is stored (computed by the web server, see apiTokens.ts).
   */
  apiTokens: defineTable({
    tokenId: v.string(),
    userId: v.string(),
    name: v.string(),
    secretHash: v.string(),
    createdAt: v.number(),
    lastUsedAt: v.optional(v.number()),
  })
    .index("by_tokenId", ["tokenId"])
    .index("by_userId", ["userId"]),

  /** Web Push subscriptions: one per browser (endpoint), owned by whoever enabled it last. */
  pushSubscriptions: defineTable({
    endpoint: v.string(),
    userId: v.string(),
    p256dh: v.string(),
    auth: v.string(),
    createdAt: v.number(),
  })
    .index("by_endpoint", ["endpoint"])
    .index("by_userId", ["userId"]),

  /** Which events a user is notified about, and their quiet hours. */
  notificationSettings: defineTable({
    userId: v.string(),
    events: v.array(v.string()),
    quietStart: v.optional(v.string()),
    quietEnd: v.optional(v.string()),
    timeZone: v.string(),
  }).index("by_userId", ["userId"]),

  /**
   * A reply that ended (completed, failed, interrupted): the inbox lists those after the
   * user's mark from this small row, never reading the reply's text.
   */
  finishedReplies: defineTable({
    messageId: v.string(),
    userId: v.string(),
    chatSessionId: v.string(),
    status: v.string(),
    preview: v.string(),
    finishedAt: v.number(),
  })
    .index("by_userId_and_finishedAt", ["userId", "finishedAt"])
    .index("by_chatSessionId", ["chatSessionId"]),

  /** When a user last looked at their inbox: finished replies up to it are seen. */
  inboxSeen: defineTable({
    userId: v.string(),
    seenAt: v.number(),
  }).index("by_userId", ["userId"]),

  /** One per unfinished message, without its text (lib/turns.ts): the notifier reads these. */
  openTurns: defineTable({
    messageId: v.string(),
    chatSessionId: v.string(),
    machineId: v.string(),
    role: messageRole,
    status: messageStatus,
    timestamp: v.number(),
    replyTo: v.optional(v.string()),
  })
    .index("by_messageId", ["messageId"])
    .index("by_timestamp", ["timestamp"])
    .index("by_chatSessionId", ["chatSessionId"]),
});
