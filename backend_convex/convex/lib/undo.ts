/**
 * Undo and redo of a session's turns: the rules of orchestrator/domain/undo.py
 * (the contract suite holds the two to the same results). Each returns the
 * fields to patch on the session.
 */
import type { Doc } from "../_generated/dataModel";
import { ensureOpen } from "./chat";
import { fail } from "./errors";

const MAX_REASON_LENGTH = 2_000;
const NO_REPLY = "No such reply in this session.";
const BUSY = "Wait for the reply to finish before undoing or redoing a turn.";
const NOT_UNDOABLE = "This reply cannot be undone: the agent recorded no turn for it.";
const NOTHING_UNDONE = "Nothing is undone in this session.";
const REDO_GONE = "Redo is no longer possible: a message was sent after the undo.";
const FINISHED = new Set(["completed", "failed", "interrupted", "aborted"]);

type UndoFields = Pick<
  Doc<"chatSessions">,
  "undoneFrom" | "undoAgentId" | "undoneAt" | "undoRequests" | "undoApplied" | "undoError"
>;

/** The agent's ID of a reply's turn, from its turn-diff part (undefined without one). */
export function agentTurnOf(part: Doc<"messageParts"> | null): string | undefined {
  if (part === null || part.type !== "turn-diff") return undefined;
  const id = (JSON.parse(part.data) as { agent_message_id?: unknown }).agent_message_id;
  return typeof id === "string" && id !== "" ? id : undefined;
}

/** Undo `reply` and every later reply of the session. */
export function requestUndo(
  session: Doc<"chatSessions">,
  reply: Doc<"chatMessages"> | null,
  agentMessageId: string | undefined,
  streaming: Doc<"chatMessages"> | null,
  now: number,
): UndoFields {
  ensureOpen(session);
  if (reply === null || reply.chatSessionId !== session.chatSessionId || reply.role !== "assistant") {
    fail("NotFound", NO_REPLY);
  }
  if (streaming !== null || !FINISHED.has(reply.status)) fail("Conflict", BUSY);
  if (agentMessageId === undefined) fail("Conflict", NOT_UNDOABLE);
  return {
    undoneFrom: reply.messageId,
    undoAgentId: agentMessageId,
    undoneAt: now,
    undoRequests: (session.undoRequests ?? 0) + 1,
    undoError: undefined,
  };
}

/** Redo what is undone in the session; refused once a message was sent after the undo. */
export function requestRedo(
  session: Doc<"chatSessions">,
  streaming: Doc<"chatMessages"> | null,
  lastMessageAt: number | undefined,
): UndoFields {
  ensureOpen(session);
  if (session.undoneFrom === undefined) fail("Conflict", NOTHING_UNDONE);
  if (streaming !== null) fail("Conflict", BUSY);
  if (session.undoneAt !== undefined && lastMessageAt !== undefined && lastMessageAt > session.undoneAt) {
    fail("Conflict", REDO_GONE);
  }
  return {
    undoneFrom: undefined,
    undoAgentId: undefined,
    undoneAt: undefined,
    undoRequests: (session.undoRequests ?? 0) + 1,
    undoError: undefined,
  };
}

/** The machine carried out the requests up to `applied` (a failed undo leaves nothing undone). */
export function finishUndo(session: Doc<"chatSessions">, applied: number, error: string | null): UndoFields {
  if (applied <= (session.undoApplied ?? 0) || applied > (session.undoRequests ?? 0)) return {};
  if (error === null) return { undoApplied: applied, undoError: undefined };
  return {
    undoApplied: applied,
    undoneFrom: undefined,
    undoAgentId: undefined,
    undoneAt: undefined,
    undoError: error.slice(0, MAX_REASON_LENGTH),
  };
}
