/**
 * Public IDs (`mch_…`, `wrk_…`) and machine secrets (`sec_…`), shaped like the
 * Python side's `RandomIds`.
 *
 * IDs need to be unique, not secret: mutations draw them from `Math.random`
 * (which Convex seeds per execution, keeping mutations deterministic) and
 * check the table's index so a repeat is drawn again. Secrets need to be
 * unguessable, so they come only from `crypto.getRandomValues` in an action,
 * where Convex provides real randomness.
 */
import type { MutationCtx } from "../_generated/server";

export const PREFIXES = {
  user: "usr",
  machine: "mch",
  worker: "wrk",
  chat_session: "chs",
  message: "msg",
  chunk: "chk",
  permission: "prm",
  question: "qst",
  command: "cmd",
  job: "job",
  job_run: "run",
  api_token: "oat",
} as const;

export type IdKind = keyof typeof PREFIXES;

const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
const ID_LENGTH = 20; // ~103 bits

function drawId(kind: IdKind): string {
  let body = "";
  for (let i = 0; i < ID_LENGTH; i++) body += ALPHABET[Math.floor(Math.random() * ALPHABET.length)];
  return `${PREFIXES[kind]}_${body}`;
}

async function taken(ctx: MutationCtx, kind: IdKind, id: string): Promise<boolean> {
  switch (kind) {
    case "user":
      return (await ctx.db.query("users").withIndex("by_userId", (q) => q.eq("userId", id)).first()) !== null;
    case "machine":
      return (
        (await ctx.db.query("machines").withIndex("by_machineId", (q) => q.eq("machineId", id)).first()) !== null
      );
    case "worker":
      // A worker ID is reserved by its token before the worker exists.
      return (
        (await ctx.db.query("workers").withIndex("by_workerId", (q) => q.eq("workerId", id)).first()) !== null ||
        (await ctx.db.query("workerTokens").withIndex("by_workerId", (q) => q.eq("workerId", id)).first()) !==
          null
      );
    case "chat_session":
      return (
        (await ctx.db
          .query("chatSessions")
          .withIndex("by_chatSessionId", (q) => q.eq("chatSessionId", id))
          .first()) !== null
      );
    case "message":
      return (
        (await ctx.db.query("chatMessages").withIndex("by_messageId", (q) => q.eq("messageId", id)).first()) !==
        null
      );
    case "permission":
      return (
        (await ctx.db
          .query("permissionRequests")
          .withIndex("by_permissionId", (q) => q.eq("permissionId", id))
          .first()) !== null
      );
    case "question":
      return (
        (await ctx.db
          .query("questionRequests")
          .withIndex("by_questionId", (q) => q.eq("questionId", id))
          .first()) !== null
      );
    case "command":
      return (
        (await ctx.db.query("commands").withIndex("by_commandId", (q) => q.eq("commandId", id)).first()) !== null
      );
    case "job":
      return (await ctx.db.query("jobs").withIndex("by_jobId", (q) => q.eq("jobId", id)).first()) !== null;
    case "job_run":
      return (await ctx.db.query("jobRuns").withIndex("by_runId", (q) => q.eq("runId", id)).first()) !== null;
    case "api_token":
      return (
        (await ctx.db.query("apiTokens").withIndex("by_tokenId", (q) => q.eq("tokenId", id)).first()) !== null
      );
    case "chunk":
      // Chunks are never looked up by ID; 103 random bits keep them distinct.
      return false;
  }
}

/** A fresh ID of `kind` that no record (or issued worker token) has. */
export async function newId(ctx: MutationCtx, kind: IdKind): Promise<string> {
  for (;;) {
    const id = drawId(kind);
    if (!(await taken(ctx, kind, id))) return id;
  }
}

/** A machine secret of 256 random bits; only in actions, where randomness is real. */
export function newSecret(): string {
  const bytes = new Uint8Array(32);
  crypto.getRandomValues(bytes);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return `sec_${btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "")}`;
}
