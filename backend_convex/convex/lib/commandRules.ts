/**
 * The rules of directory commands, the same as orchestrator/domain/commands.py:
 * argument, result and progress validation, which git URLs may be cloned, and
 * the transitions (claim, progress, finish, cancel, recover). Same limits,
 * same order of checks, same sentences.
 */
import type { Doc } from "../_generated/dataModel";
import type { MutationCtx } from "../_generated/server";
import { fail } from "./errors";
import { codePoints, normalizeRelativePath, pyStrip, MAX_PATH_PART_LENGTH } from "./rules";

export const MAX_PAGE_ENTRIES = 1000;
export const MAX_URL_LENGTH = 2048;
export const MAX_CURSOR_LENGTH = 600;
export const MAX_PROGRESS_LINE_LENGTH = 500;
export const MAX_ERROR_LENGTH = 2000;
export const MAX_PENDING_COMMANDS = 100;
export const KEEP_FINISHED_COMMANDS = 200;
export const LIST_COMMANDS_LIMIT = 100;
/** Running commands one listing or restart reads; a machine runs a few at a time. */
export const MAX_RUNNING_COMMANDS = 500;

export const CANCELLED = "The command was cancelled.";
export const RESTARTED = "The machine restarted while this command ran.";
export const ALREADY_FINISHED = "This command has already finished.";
export const NO_COMMAND = "No such command.";
export const TOO_MANY_PENDING =
  `This machine already has ${MAX_PENDING_COMMANDS} commands waiting. ` + "Wait for them to run or cancel some.";

const ALLOWED = "use an https://, http://, ssh://, git:// or user@host:path URL.";
export const URL_REQUIRED = "Enter the URL of the repository to clone.";
const URL_TOO_LONG = `The repository URL must be at most ${MAX_URL_LENGTH} characters.`;
const URL_CHARACTERS = "The repository URL must not contain spaces or control characters.";
const URL_OPTION = "The repository URL must not start with '-', which git would read as an option.";
const URL_FILE = "Cloning from local files (file://) is not allowed; " + ALLOWED;
const URL_LOCAL = "Local paths cannot be cloned; " + ALLOWED;
const URL_OTHER = "This is not a repository URL; " + ALLOWED;
const URL_HOST = "The repository URL must name a valid host.";
const URL_PORT = "The port in the repository URL must be a number from 1 to 65535.";
const URL_USER = "The user name in the repository URL must not start with '-'.";
const URL_CREDENTIALS =
  "The repository URL must not carry a password or token, which would be stored and shown;" +
  " set up a git credential helper or an SSH key on the machine instead.";
const URL_PATH = "The repository URL must include the path of the repository.";
const NEW_FOLDER_REQUIRED = "Choose a name for the new folder.";
const CLONE_TARGET_REQUIRED = "Choose the folder to clone into.";
const PATH_NOT_TEXT = "The path must be valid UTF-8 text.";
const NAME_CONTROL = "Folder names must not contain control characters.";
const NAME_BYTES = `Each folder name must be at most ${MAX_PATH_PART_LENGTH} bytes in UTF-8.`;
const BAD_CURSOR = "The page cursor is not valid; list the folder again from its first page.";

const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;
const TRANSPORT = /^([A-Za-z][A-Za-z0-9+.-]*)::/;
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])$/;
const AUTHORITY = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]]*)(?::(.*))?$/;
const SCP = /^([^@/:]+)@([^@/:[\]]+|\[[0-9A-Fa-f:.]+\]):(.+)$/;
const WINDOWS_DRIVE = /^[A-Za-z]:[\\/]/;
const ALLOWED_SCHEMES = ["https", "http", "ssh", "git"];
// unicodedata.category in ("Cc", "Cf", "Zl", "Zp"), and Python's str.isspace().
const CONTROL = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;
const SPACE = /[\t\n\v\f\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;
const LONE_SURROGATE = /\p{Cs}/u;

export type CommandKind = "list_dir" | "mkdir" | "git_clone";
export type Arguments = { path: string; parents: boolean; url: string | null; cursor: string | null };
export type Entry = {
  name: string;
  kind: "file" | "dir" | "symlink" | "other";
  size: number | null;
  modified: number | null;
  isGitRepo: boolean;
};
export type Result = { path: string; entries: Entry[]; total: number; nextCursor: string | null };
type Command = Doc<"commands">;

/** Whether `value` encodes as UTF-8 (no lone surrogates), as Python's `_is_text`. */
function isText(value: string): boolean {
  return !LONE_SURROGATE.test(value);
}

function utf8Length(value: string): number {
  return new TextEncoder().encode(value).length;
}

/** An existing folder's path, normalized; refuses `..`, absolute paths, NUL. */
export function validatePath(path: string): string {
  if (!isText(path)) fail("InvalidInput", PATH_NOT_TEXT);
  const clean = normalizeRelativePath(path);
  if (clean.split("/").some((part) => utf8Length(part) > MAX_PATH_PART_LENGTH)) fail("PathOutsideRoot", NAME_BYTES);
  return clean;
}

function validateNewFolder(path: string, missing: string = NEW_FOLDER_REQUIRED): string {
  const clean = validatePath(path);
  if (!clean) fail("InvalidInput", missing);
  if (CONTROL.test(clean)) fail("InvalidInput", NAME_CONTROL);
  return clean;
}

function checkAuthority(netloc: string, scheme = "ssh"): void {
  const at = netloc.lastIndexOf("@");
  const user = at < 0 ? "" : netloc.slice(0, at);
  const hostport = at < 0 ? netloc : netloc.slice(at + 1);
  if (user.startsWith("-")) fail("InvalidInput", URL_USER);
  // Stored and shown with the command: a credential helper or SSH key on the machine is the place.
  if (user.includes(":") || (user !== "" && (scheme === "http" || scheme === "https"))) {
    fail("InvalidInput", URL_CREDENTIALS);
  }
  const parts = AUTHORITY.exec(hostport);
  if (parts === null || !HOST.test(parts[1])) fail("InvalidInput", URL_HOST);
  const port = parts[2];
  if (port !== undefined && !(/^[0-9]+$/.test(port) && Number(port) >= 1 && Number(port) <= 65535)) {
    fail("InvalidInput", URL_PORT);
  }
}

/** `url` if git may clone it: https, http, ssh, git or `user@host:path` only. */
export function validateGitUrl(url: string): string {
  if (!pyStrip(url)) fail("InvalidInput", URL_REQUIRED);
  if (codePoints(url) > MAX_URL_LENGTH) fail("InvalidInput", URL_TOO_LONG);
  if (!isText(url) || SPACE.test(url) || CONTROL.test(url)) fail("InvalidInput", URL_CHARACTERS);
  if (url.startsWith("-")) fail("InvalidInput", URL_OPTION);
  const transport = TRANSPORT.exec(url);
  if (transport !== null) {
    fail("InvalidInput", `The ${transport[1]}:: transport is not allowed; ` + ALLOWED);
  }
  const schemeMatch = SCHEME.exec(url);
  if (schemeMatch !== null) {
    const scheme = schemeMatch[1].toLowerCase();
    if (scheme === "file") fail("InvalidInput", URL_FILE);
    if (!ALLOWED_SCHEMES.includes(scheme)) {
      fail("InvalidInput", `The ${schemeMatch[1]}:// scheme is not allowed; ` + ALLOWED);
    }
    const rest = url.slice(schemeMatch[0].length);
    const slash = rest.indexOf("/");
    const netloc = slash < 0 ? rest : rest.slice(0, slash);
    const path = slash < 0 ? "" : rest.slice(slash + 1);
    checkAuthority(netloc, scheme);
    if (!path.replace(/^\/+|\/+$/g, "")) fail("InvalidInput", URL_PATH);
    return scheme + url.slice(scheme.length); // git reads schemes case-sensitively
  }
  if (/^[/.~\\]/.test(url) || WINDOWS_DRIVE.test(url) || !url.includes(":")) fail("InvalidInput", URL_LOCAL);
  const scp = SCP.exec(url);
  if (scp !== null) {
    checkAuthority(`${scp[1]}@${scp[2]}`);
    return url;
  }
  fail("InvalidInput", URL_OTHER);
}

/** A page cursor if it can be one (bounded text without NUL); "" means none. */
export function validateCursor(cursor: string | null): string | null {
  if (cursor === null || cursor === "") return null;
  if (codePoints(cursor) > MAX_CURSOR_LENGTH || cursor.includes("\0") || !isText(cursor)) {
    fail("InvalidInput", BAD_CURSOR);
  }
  return cursor;
}

export function parseKind(raw: string): CommandKind {
  if (raw === "list_dir" || raw === "mkdir" || raw === "git_clone") return raw;
  fail("InvalidInput", "The command kind must be one of: list_dir, mkdir, git_clone.");
}

/** The arguments `kind` reads, checked and normalized; the other fields are dropped. */
export function validateArguments(kind: CommandKind, args: Arguments): Arguments {
  if (kind === "list_dir") {
    return { path: validatePath(args.path), parents: false, url: null, cursor: validateCursor(args.cursor) };
  }
  if (kind === "mkdir") {
    return { path: validateNewFolder(args.path), parents: args.parents, url: null, cursor: null };
  }
  return {
    path: validateNewFolder(args.path, CLONE_TARGET_REQUIRED),
    parents: false,
    url: validateGitUrl(args.url ?? ""),
    cursor: null,
  };
}

function checkEntry(entry: Entry): void {
  const name = entry.name;
  if (!name || name === "." || name === ".." || name.includes("/") || name.includes("\0") || !isText(name)) {
    fail("InvalidInput", "An entry name of a listing is not a valid file name.");
  }
  if (utf8Length(name) > MAX_PATH_PART_LENGTH) fail("InvalidInput", NAME_BYTES);
  if (entry.size !== null && entry.size < 0) fail("InvalidInput", "An entry size of a listing must not be negative.");
}

/** `result` if it fits a command of `kind`: a page for list_dir, a path otherwise. */
export function validateResult(kind: CommandKind, result: Result): Result {
  validatePath(result.path);
  if (kind !== "list_dir" && (result.entries.length > 0 || result.nextCursor)) {
    fail("InvalidInput", "Only a list_dir result has entries.");
  }
  if (result.entries.length > MAX_PAGE_ENTRIES) {
    fail("InvalidInput", `A listing page must have at most ${MAX_PAGE_ENTRIES} entries.`);
  }
  result.entries.forEach(checkEntry);
  if (result.total < result.entries.length) {
    fail("InvalidInput", "A listing's total must count at least the entries it holds.");
  }
  validateCursor(result.nextCursor);
  return result;
}

/** A progress report: a whole percentage 0-100 and a bounded line. */
export function validateProgress(progress: number, line: string): void {
  if (!Number.isInteger(progress) || progress < 0 || progress > 100) {
    fail("InvalidInput", "Progress must be a whole number from 0 to 100.");
  }
  if (codePoints(line) > MAX_PROGRESS_LINE_LENGTH || !isText(line)) {
    fail("InvalidInput", `A progress line must be text of at most ${MAX_PROGRESS_LINE_LENGTH} characters.`);
  }
}

function validateError(error: string): string {
  if (!pyStrip(error) || codePoints(error) > MAX_ERROR_LENGTH || !isText(error)) {
    fail("InvalidInput", `A command's error must be text of 1-${MAX_ERROR_LENGTH} characters.`);
  }
  return error;
}

// --- transitions: each returns the fields to patch -----------------------------------

type Changes = Partial<Omit<Command, "_id" | "_creationTime">>;

function isFinished(command: Command): boolean {
  return command.status === "done" || command.status === "failed";
}

/** The machine takes a pending command: it becomes `running`. */
export function claim(command: Command, now: number): Changes {
  if (isFinished(command)) fail("Conflict", ALREADY_FINISHED);
  if (command.status !== "pending") fail("Conflict", "This command has already been claimed.");
  return { status: "running", startedAt: now };
}

function ensureRunning(command: Command): void {
  if (isFinished(command)) fail("Conflict", ALREADY_FINISHED);
  if (command.status !== "running") fail("Conflict", "This command has not been claimed yet.");
}

/** A running command reports how far it got. */
export function recordProgress(command: Command, progress: number, line: string): Changes {
  validateProgress(progress, line);
  ensureRunning(command);
  return { progress, progressLine: line || undefined };
}

/** End a running command: `done` with its result, or `failed` with one sentence. */
export function finish(command: Command, now: number, result: Result | null, error: string | null): Changes {
  if ((result === null) === (error === null)) fail("InvalidInput", "Finish a command with either a result or an error.");
  ensureRunning(command);
  if (result !== null) {
    return { status: "done", result: validateResult(command.kind, result), progress: 100, finishedAt: now };
  }
  return { status: "failed", error: validateError(error ?? ""), finishedAt: now };
}

/** The owner cancels: a pending command fails at once, a running one is asked to stop. */
export function requestCancel(command: Command, now: number): Changes {
  if (isFinished(command)) fail("Conflict", ALREADY_FINISHED);
  if (command.status === "pending") return { status: "failed", error: CANCELLED, finishedAt: now };
  return { cancelRequested: true };
}

/** A command a dead machine process left `running`: list_dir runs again, the others fail. */
export function recover(command: Command, now: number): Changes {
  if (command.status !== "running") return {};
  if (command.kind === "list_dir" && !command.cancelRequested) {
    return { status: "pending", startedAt: undefined, progress: 0, progressLine: undefined };
  }
  return { status: "failed", error: command.cancelRequested ? CANCELLED : RESTARTED, finishedAt: now };
}

/** On a machine process's (re)start: what a dead process left running is not running any more. */
export async function recoverCommands(ctx: MutationCtx, machineId: string, now: number): Promise<void> {
  const running = await ctx.db
    .query("commands")
    .withIndex("by_machineId_and_status", (q) => q.eq("machineId", machineId).eq("status", "running"))
    .take(MAX_RUNNING_COMMANDS);
  for (const command of running) await ctx.db.patch(command._id, recover(command, now));
}
