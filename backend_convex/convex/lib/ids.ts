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
import { withPublicId, type PublicIdTable } from "./access";

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

/** The table whose records carry IDs of each kind; a worker ID is reserved by its token before the worker exists. */
const HOLDERS: Record<IdKind, PublicIdTable[]> = {
  user: ["users"],
  machine: ["machines"],
  worker: ["workers", "workerTokens"],
  chat_session: ["chatSessions"],
  message: ["chatMessages"],
  // Chunks are never looked up by ID; 103 random bits keep them distinct.
  chunk: [],
  permission: ["permissionRequests"],
  question: ["questionRequests"],
  command: ["commands"],
  job: ["jobs"],
  job_run: ["jobRuns"],
  api_token: ["apiTokens"],
};

async function taken(ctx: MutationCtx, kind: IdKind, id: string): Promise<boolean> {
  for (const table of HOLDERS[kind]) if ((await withPublicId(ctx, table, id).first()) !== null) return true;
  return false;
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
