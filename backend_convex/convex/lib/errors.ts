/**
 * Refusals as `ConvexError({kind, message})`.
 *
 * `kind` names the Python domain error class (orchestrator.domain.errors) the
 * adapter raises, and `message` is the very sentence the embedded backend
 * uses, so a user sees the same words whichever backend runs.
 */
import { ConvexError } from "convex/values";

export type ErrorKind =
  | "InvalidInput"
  | "InvalidToken"
  | "PathOutsideRoot"
  | "PayloadTooLarge"
  | "AuthenticationFailed"
  | "PermissionDenied"
  | "NotFound"
  | "Conflict"
  | "InvalidTransition"
  | "TextGap"
  | "MachineInUse";

export type ErrorData = { kind: ErrorKind; message: string };

export function fail(kind: ErrorKind, message: string): never {
  throw new ConvexError<ErrorData>({ kind, message });
}

export const INVALID_TOKEN = "Invalid token";
export const MACHINE_IN_USE =
  "Another machine process is already running with this token; only one may run per machine.";
export const TAKEN_OVER = "Another machine process took over this machine, so this one stops.";
export const NO_MACHINE = "No such machine.";
export const NO_WORKER = "No such worker.";
export const NO_USER = "No such user.";
export const NO_SESSION = "No such chat session.";
export const NO_MESSAGE = "No such message.";
export const NO_PERMISSION = "No such permission request.";
export const NO_QUESTION = "No such question.";
export const SESSION_ENDED = "This session has ended. Restore it to continue.";
