/**
 * Every table of the orchestrator, and only here.
 *
 * Records carry their own public ID (`mch_…`, `wrk_…`, …) as a string field
 * with a `by_<field>` index, the same shape the embedded backend uses, so IDs
 * and worker tokens look alike on both backends and an ID that was never
 * issued is simply "not found" rather than a validator error. Timestamps are
 * milliseconds since the Unix epoch (UTC). Order "oldest first" is the
 * index's `_creationTime` order, the equivalent of SQLite's rowid.
 *
 * A table that stores a record takes the record's fields from its validator
 * (lib/validators.ts `storedFields`: a nullable field is stored optional) and
 * declares only what it stores besides, or stores differently.
 */
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
import {
  apiTokenRecord,
  chatChunkRecord,
  chatMessageRecord,
  chatSessionRecord,
  commandRecord,
  finishedReplyRecord,
  jobRecord,
  jobRunRecord,
  jobRunStatus,
  machineRecord,
  notificationSettingsRecord,
  openTurnMessage,
  partFields,
  permissionPolicy,
  permissionRecord,
  pushSubscriptionRecord,
  questionRecord,
  storedFields,
  userRecord,
  workerRecord,
} from "./lib/validators";

export default defineSchema({
  users: defineTable({
    ...storedFields(userRecord.fields),
    /** An argon2 hash computed by the web server; never a password. */
    passwordHash: v.string(),
  })
    .index("by_userId", ["userId"])
    .index("by_username", ["username"]),

  machines: defineTable({
    ...storedFields(machineRecord.fields),
    /** Hex SHA-256 of the machine secret (see lib/auth.ts for why not a slow hash). */
    secretHash: v.string(),
    /** The machine process holding the machine's lease, and until when (domain/lease.py). */
    instanceId: v.optional(v.string()),
    leaseUntil: v.optional(v.number()),
  })
    .index("by_machineId", ["machineId"])
    .index("by_userId", ["userId"])
    .index("by_status_and_lastHeartbeat", ["status", "lastHeartbeat"]),

  workers: defineTable({
    ...storedFields(workerRecord.fields),
    /** The machine's owner, copied so pending workers list by user through an index. */
    userId: v.string(),
    /** The agents (modes) and slash commands its agent offers; absent: none reported yet. */
    agents: v.optional(v.array(v.string())),
    commands: v.optional(v.array(v.string())),
    /** Absent: the safe default policy (records.ts DEFAULT_PERMISSION_POLICY). */
    permissionPolicy: v.optional(permissionPolicy),
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
    ...storedFields(chatSessionRecord.fields),
    /** The worker's machine, copied so a machine's work list reads one index. */
    machineId: v.string(),
    /** Absent on sessions from before undo existed (their records say 0). */
    undoRequests: v.optional(v.number()),
    undoApplied: v.optional(v.number()),
    /** The sequence of the session's last chunk: chunks are numbered 1, 2, … */
    lastSequence: v.number(),
  })
    .index("by_chatSessionId", ["chatSessionId"])
    .index("by_workerId", ["workerId"])
    .index("by_workerId_and_status_and_lastActivity", ["workerId", "status", "lastActivity"])
    .index("by_machineId", ["machineId"])
    .index("by_machineId_and_status", ["machineId", "status"]),

  questionRequests: defineTable({
    ...storedFields(questionRecord.fields),
    machineId: v.string(),
  })
    .index("by_questionId", ["questionId"])
    .index("by_chatSessionId_and_status", ["chatSessionId", "status"])
    .index("by_messageId_and_status", ["messageId", "status"])
    .index("by_machineId_and_status", ["machineId", "status"])
    .index("by_chatSessionId", ["chatSessionId"]),

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

  chatChunks: defineTable(storedFields(chatChunkRecord.fields))
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
    ...storedFields(permissionRecord.fields),
    machineId: v.string(),
  })
    .index("by_permissionId", ["permissionId"])
    .index("by_chatSessionId_and_status", ["chatSessionId", "status"])
    .index("by_messageId_and_status", ["messageId", "status"])
    .index("by_machineId_and_status", ["machineId", "status"])
    .index("by_chatSessionId", ["chatSessionId"]),

  /** Directory commands a user sends to a machine (list_dir, mkdir, git_clone). */
  commands: defineTable(storedFields(commandRecord.fields))
    .index("by_commandId", ["commandId"])
    .index("by_machineId", ["machineId"])
    .index("by_machineId_and_status", ["machineId", "status"]),

  /**
   * Scheduled jobs: a prompt sent to a worker on a cron schedule. The next
   * due time is computed by the web server (Python) or the deployment's cron
   * (jobsScheduler.runDue); a job only stores its next due time, and `nextRunAt` absent means "not scheduled".
   */
  jobs: defineTable(storedFields(jobRecord.fields))
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
    ...storedFields(jobRunRecord.fields),
    userId: v.string(),
    status: v.optional(jobRunStatus),
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
    ...storedFields(apiTokenRecord.fields),
    secretHash: v.string(),
  })
    .index("by_tokenId", ["tokenId"])
    .index("by_userId", ["userId"]),

  /** Web Push subscriptions: one per browser (endpoint), owned by whoever enabled it last. */
  pushSubscriptions: defineTable(storedFields(pushSubscriptionRecord.fields))
    .index("by_endpoint", ["endpoint"])
    .index("by_userId", ["userId"]),

  /** Which events a user is notified about, and their quiet hours. */
  notificationSettings: defineTable({
    ...storedFields(notificationSettingsRecord.fields),
    userId: v.string(),
  }).index("by_userId", ["userId"]),

  /**
   * A reply that ended (completed, failed, interrupted): the inbox lists those after the
   * user's mark from this small row, never reading the reply's text.
   */
  finishedReplies: defineTable(storedFields(finishedReplyRecord.fields))
    .index("by_userId_and_finishedAt", ["userId", "finishedAt"])
    .index("by_chatSessionId", ["chatSessionId"]),

  /** When a user last looked at their inbox: finished replies up to it are seen. */
  inboxSeen: defineTable({
    userId: v.string(),
    seenAt: v.number(),
  }).index("by_userId", ["userId"]),

  /** One per unfinished message, without its text (lib/turns.ts): the notifier reads these. */
  openTurns: defineTable({
    ...storedFields(openTurnMessage.fields),
    machineId: v.string(),
  })
    .index("by_messageId", ["messageId"])
    .index("by_timestamp", ["timestamp"])
    .index("by_chatSessionId", ["chatSessionId"]),
});
