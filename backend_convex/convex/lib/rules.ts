/**
 * The domain's validation rules, the same as orchestrator/domain/model.py and
 * chat.py: same limits, same order of checks, same sentences.
 *
 * Python measures strings in code points and strips Python's whitespace set,
 * so this module does too (`codePoints`, `pyStrip`), rather than JavaScript's
 * UTF-16 `length` and `trim()`, which disagree on astral characters and on a
 * few separators.
 */
import { fail } from "./errors";
import type { ChatSessionStatus, MessageStatus, Question, WorkerStatus } from "./validators";

export const MAX_NAME_LENGTH = 100;
export const MAX_PATH_LENGTH = 1024;
export const MAX_PATH_PART_LENGTH = 255;
export const MAX_MESSAGE_LENGTH = 100_000;
export const MAX_CHUNK_LENGTH = 64_000;
export const MAX_REASON_LENGTH = 2_000;
export const MAX_REPLY_LENGTH = 1_000_000;
export const MAX_TITLE_LENGTH = 200;
export const MAX_AGENT_ID_LENGTH = 200;
export const MAX_PERMISSION_TEXT_LENGTH = 10_000;
/** UTF-8 bytes of an edit's diff a permission request keeps (MAX_DIFF_BYTES in Python). */
export const MAX_DIFF_BYTES = 60_000;
/** The largest diff size a permission request may state (MAX_DIFF_SIZE in Python). */
export const MAX_DIFF_SIZE = Number.MAX_SAFE_INTEGER;
/** Not a domain rule: the most model names a worker may report (an array bound). */
export const MAX_MODELS = 1000;

// Python's str.isspace() set: what str.strip() removes.
const PY_SPACE = "[\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";
const LEADING = new RegExp(`^${PY_SPACE}+`, "u");
const TRAILING = new RegExp(`${PY_SPACE}+$`, "u");

/** `value.strip()` as Python does it. */
export function pyStrip(value: string): string {
  return value.replace(LEADING, "").replace(TRAILING, "");
}

/** `len(value)` as Python counts it: code points, not UTF-16 units. */
export function codePoints(value: string): number {
  let count = value.length;
  for (let i = 0; i < value.length - 1; i++) {
    const unit = value.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = value.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        count--;
        i++;
      }
    }
  }
  return count;
}

/** `name` without surrounding spaces, or a refusal if empty, too long or with control characters. */
export function validateName(name: string, what: string): string {
  const cleaned = pyStrip(name);
  if (!cleaned) fail("InvalidInput", `${what} must not be empty.`);
  if (codePoints(cleaned) > MAX_NAME_LENGTH) {
    fail("InvalidInput", `${what} must be at most ${MAX_NAME_LENGTH} characters.`);
  }
  for (let i = 0; i < cleaned.length; i++) {
    if (cleaned.charCodeAt(i) < 32) fail("InvalidInput", `${what} must not contain control characters.`);
  }
  return cleaned;
}

const ABSOLUTE = "Use a path relative to the machine's root, not an absolute one.";

/** A clean POSIX path relative to a root (`""` for the root itself); the lexical half of confinement. */
export function normalizeRelativePath(path: string): string {
  if (path.includes("\0")) fail("PathOutsideRoot", "The path must not contain NUL bytes.");
  if (codePoints(path) > MAX_PATH_LENGTH) {
    fail("PathOutsideRoot", `The path must be at most ${MAX_PATH_LENGTH} characters.`);
  }
  const chars = Array.from(path);
  if (path.startsWith("/") || path.startsWith("\\") || (chars.length > 1 && chars[1] === ":")) {
    fail("PathOutsideRoot", ABSOLUTE);
  }
  // PurePosixPath(...).parts of a relative path: empty and "." parts vanish.
  const parts = path
    .replaceAll("\\", "/")
    .split("/")
    .filter((part) => part !== "" && part !== ".");
  if (parts.includes("..")) fail("PathOutsideRoot", "The path must not contain '..'.");
  if (parts.some((part) => codePoints(part) > MAX_PATH_PART_LENGTH)) {
    fail("PathOutsideRoot", `Each folder name must be at most ${MAX_PATH_PART_LENGTH} characters.`);
  }
  const clean = parts.join("/");
  const cleanChars = Array.from(clean);
  if (cleanChars.length > 1 && cleanChars[1] === ":") fail("PathOutsideRoot", ABSOLUTE);
  return clean;
}

const WORKER_TRANSITIONS: Record<WorkerStatus, readonly WorkerStatus[]> = {
  pending_authorization: ["ready"],
  ready: ["online", "offline"],
  online: ["offline"],
  offline: ["online"],
};

/** `target` if a worker may go there from `current` (staying put is allowed), else a refusal. */
export function transitionWorker(current: WorkerStatus, target: WorkerStatus): WorkerStatus {
  if (current !== target && !WORKER_TRANSITIONS[current].includes(target)) {
    if (current === "pending_authorization") {
      fail("InvalidTransition", "This worker is waiting for approval in the web UI.");
    }
    fail("InvalidTransition", `A worker cannot go from ${current} to ${target}.`);
  }
  return target;
}

export function validateModels(models: string[]): string[] {
  if (models.length > MAX_MODELS) {
    fail("PayloadTooLarge", `A worker can offer at most ${MAX_MODELS} models.`);
  }
  return models;
}

/** `model` if a session may start on a worker in `status` offering `models`. */
/** Refuse new work for a worker while its machine cannot run it, saying why. */
export function checkRunnable(problem: string | undefined): void {
  if (problem !== undefined) fail("Conflict", problem);
}

export function checkModel(status: WorkerStatus, models: string[], model: string): string {
  if (status === "pending_authorization") {
    fail("Conflict", "This worker is waiting for approval. Approve it before starting a session.");
  }
  if (models.length === 0) {
    fail(
      "InvalidInput",
      "The worker's models are not known yet because its machine has not reported them." +
        " Start the machine and try again.",
    );
  }
  if (!models.includes(model)) {
    fail("InvalidInput", `The worker does not offer model ${model}. Pick one of: ${models.join(", ")}.`);
  }
  return model;
}

/** `agent` if the worker offers it (undefined: the agent's own default). */
export function checkAgent(agents: string[], agent: string | undefined): string | undefined {
  if (agent !== undefined && !agents.includes(agent)) {
    const offered = agents.length > 0 ? agents.join(", ") : "none reported yet";
    fail("InvalidInput", `The worker does not offer agent ${agent.slice(0, 80)}. Pick one of: ${offered}.`);
  }
  return agent;
}

export function validateMessage(content: string): string {
  if (!pyStrip(content)) fail("InvalidInput", "A message must not be empty.");
  if (codePoints(content) > MAX_MESSAGE_LENGTH) {
    fail("PayloadTooLarge", `A message must be at most ${MAX_MESSAGE_LENGTH} characters.`);
  }
  return content;
}

function bounded(value: string, limit: number, what: string): string {
  if (!pyStrip(value)) fail("InvalidInput", `${what} must not be empty.`);
  if (codePoints(value) > limit) fail("PayloadTooLarge", `${what} must be at most ${limit} characters.`);
  return value;
}

export function validateChunk(text: string): string {
  if (!text) fail("InvalidInput", "A chunk must not be empty.");
  if (codePoints(text) > MAX_CHUNK_LENGTH) {
    fail("PayloadTooLarge", `A chunk must be at most ${MAX_CHUNK_LENGTH} characters.`);
  }
  return text;
}

export function validateReply(content: string): string {
  if (codePoints(content) > MAX_REPLY_LENGTH) {
    fail("PayloadTooLarge", `A reply must be at most ${MAX_REPLY_LENGTH} characters.`);
  }
  return content;
}

const REPLY_ENDINGS: readonly string[] = ["failed", "interrupted", "aborted"];

/** How a reply ends: failed, interrupted or aborted, with a bounded reason. */
export function validateEnding(status: string, reason: string): MessageStatus {
  if (!REPLY_ENDINGS.includes(status)) {
    fail("InvalidInput", "A reply can only end as failed, interrupted or aborted.");
  }
  if (codePoints(reason) > MAX_REASON_LENGTH) {
    fail("PayloadTooLarge", `The reason must be at most ${MAX_REASON_LENGTH} characters.`);
  }
  return status as MessageStatus;
}

/** What a machine may change on a session: active/idle, the agent's session ID, a title. */
export function validateSessionUpdate(
  status: ChatSessionStatus | undefined,
  agentSessionId: string | undefined,
  title: string | undefined,
): { status?: ChatSessionStatus; agentSessionId?: string; title?: string } {
  if (status === "terminated") fail("InvalidTransition", "Only the owner of a session can end it.");
  if (agentSessionId !== undefined) bounded(agentSessionId, MAX_AGENT_ID_LENGTH, "The agent session ID");
  if (title !== undefined) title = pyStrip(bounded(title, MAX_TITLE_LENGTH, "A title"));
  return { status, agentSessionId, title };
}

/** An edit request's file and diff are bounded and its diff size counts the diff. */
export function validatePermissionEdit(file: string, diff: string, diffSize: number) {
  if (codePoints(file) > MAX_PERMISSION_TEXT_LENGTH) {
    fail("PayloadTooLarge", `The file path must be at most ${MAX_PERMISSION_TEXT_LENGTH} characters.`);
  }
  const kept = new TextEncoder().encode(diff).length;
  if (kept > MAX_DIFF_BYTES) {
    fail("PayloadTooLarge", `The diff must be at most ${MAX_DIFF_BYTES} bytes; send its start and its full size.`);
  }
  if (!Number.isInteger(diffSize) || diffSize < kept || diffSize > MAX_DIFF_SIZE) {
    fail("InvalidInput", "The diff size must count the bytes of the whole diff.");
  }
  return { file, diff, diffSize };
}

export function validatePermissionRequest(agentRequestId: string, tool: string, description: string) {
  return {
    agentRequestId: bounded(agentRequestId, MAX_AGENT_ID_LENGTH, "The agent request ID"),
    tool: bounded(tool, MAX_PERMISSION_TEXT_LENGTH, "The tool name"),
    description: bounded(description, MAX_PERMISSION_TEXT_LENGTH, "The description"),
  };
}

/** `value[start:]` as Python slices it: `start` counts code points. */
export function fromCodePoint(value: string, start: number): string {
  let unit = 0;
  for (let seen = 0; seen < start && unit < value.length; seen++) {
    const code = value.charCodeAt(unit);
    const next = value.charCodeAt(unit + 1);
    unit += code >= 0xd800 && code <= 0xdbff && next >= 0xdc00 && next <= 0xdfff ? 2 : 1;
  }
  return value.slice(unit);
}

/** Questions in one request, choices per question, and a question's texts (domain/questions.py). */
export const MAX_QUESTIONS = 10;
export const MAX_OPTIONS = 50;
export const MAX_QUESTION_TEXT_LENGTH = 10_000;

function boundedText(value: string, what: string, blankOk = false): string {
  if (!blankOk && !pyStrip(value)) fail("InvalidInput", `${what} must not be empty.`);
  if (codePoints(value) > MAX_QUESTION_TEXT_LENGTH) {
    fail("PayloadTooLarge", `${what} must be at most ${MAX_QUESTION_TEXT_LENGTH} characters.`);
  }
  return value;
}

export function validateQuestionRequest(agentRequestId: string, questions: Question[]): void {
  if (!pyStrip(agentRequestId)) fail("InvalidInput", "The agent request ID must not be empty.");
  if (codePoints(agentRequestId) > MAX_AGENT_ID_LENGTH) {
    fail("PayloadTooLarge", `The agent request ID must be at most ${MAX_AGENT_ID_LENGTH} characters.`);
  }
  if (questions.length === 0) fail("InvalidInput", "A question request must ask at least one question.");
  if (questions.length > MAX_QUESTIONS) {
    fail("PayloadTooLarge", `A question request may ask at most ${MAX_QUESTIONS} questions.`);
  }
  for (const question of questions) {
    boundedText(question.question, "A question");
    boundedText(question.header, "A question's header", true);
    if (question.options.length > MAX_OPTIONS) {
      fail("PayloadTooLarge", `A question may offer at most ${MAX_OPTIONS} choices.`);
    }
    if (question.options.length === 0 && !question.custom) {
      fail("InvalidInput", "A question needs choices or must allow a typed answer.");
    }
    for (const option of question.options) {
      boundedText(option.label, "A choice's label");
      boundedText(option.description, "A choice's description", true);
    }
  }
}

export function validateAnswers(questions: Question[], answers: string[][]): string[][] {
  if (answers.length !== questions.length) {
    fail("InvalidInput", `Give one answer for each of the ${questions.length} questions.`);
  }
  questions.forEach((question, index) => {
    const number = index + 1;
    const picked = answers[index];
    if (picked.length === 0 || picked.some((text) => !pyStrip(text))) {
      fail("InvalidInput", `The answer to question ${number} must not be empty.`);
    }
    if (picked.length > 1 && !question.multiple) fail("InvalidInput", `Question ${number} takes one answer.`);
    const labels = new Set(question.options.map((option) => option.label));
    for (const text of picked) {
      boundedText(text, `The answer to question ${number}`);
      if (!labels.has(text) && !question.custom) {
        fail("InvalidInput", `The answer to question ${number} must be one of its choices.`);
      }
    }
  });
  return answers;
}
