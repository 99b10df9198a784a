// Cards for the parts of a reply other than its text: tool calls, reasoning, subtasks,
// changed files. Everything the agent sent goes in as text (never HTML), with terminal
// escape sequences removed, so a tool's output is inert whatever it holds.
import { diffCard } from "./diff.js";
import { h } from "./dom.js";

// CSI (colours, cursor moves), OSC (titles, links) and the other two-byte escapes.
const ANSI = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/g;
export const inert = (text) => (text ?? "").replace(ANSI, "");

const UTF8 = new TextEncoder();
export function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} kB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export function duration(ms) {
  const seconds = Math.max(0, ms) / 1000;
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

function parsed(input) {
  try {
    const value = JSON.parse(input);
    return value && typeof value === "object" ? value : {};
  } catch (_) {
    return {};
  }
}

function pretty(input) {
  try {
    return JSON.stringify(JSON.parse(input), null, 2);
  } catch (_) {
    return input;
  }
}

// What a call works on, when opencode gave it no title yet: the command, the file, the pattern.
function subject(tool, input) {
  const args = parsed(input);
  const first = [args.command, args.filePath, args.path, args.pattern, args.url, args.description].find(
    (value) => typeof value === "string" && value,
  );
  const agent = tool === "task" && typeof args.subagent_type === "string" ? `${args.subagent_type}: ` : "";
  return `${agent}${first ?? ""}`;
}

const STATE_WORDS = { pending: "pending", running: "running", completed: "completed", error: "error" };

// "running 3.2 s" / "completed in 1.0 s": the time the call took, or has taken so far.
export function toolTime(state, now = Date.now()) {
  if (!state.started_at) return "";
  if (state.status === "running") return duration(now - state.started_at);
  if (state.ended_at) return duration(state.ended_at - state.started_at);
  return "";
}

function fold(label, text, extra) {
  return h(
    "details",
    { class: "part-fold" },
    h("summary", {}, h("span", { class: "fold-label" }, label), extra ? h("span", { class: "fold-extra" }, ` · ${extra}`) : null, h("span", { class: "fold-more" }, " · show more")),
    h("pre", {}, h("code", {}, inert(text))),
  );
}

// One card per tool call: name, subject, state with its time, error, input and output folded.
export function toolCard(part, card) {
  const { tool, state } = part.body;
  const el =
    card ??
    h(
      "div",
      { class: "part tool-card" },
      h(
        "div",
        { class: "tool-head" },
        h("strong", { class: "tool-name" }),
        " ",
        h("span", { class: "tool-title" }),
        " ",
        h("span", { class: "tool-state" }),
        " ",
        h("span", { class: "tool-time" }),
      ),
      h("p", { class: "tool-error", hidden: true }),
      h("div", { class: "tool-io" }),
    );
  el.dataset.state = state.status;
  el.dataset.started = state.started_at ?? "";
  el.querySelector(".tool-name").textContent = inert(tool);
  el.querySelector(".tool-title").textContent = inert(state.title || subject(tool, state.input));
  el.querySelector(".tool-state").textContent = STATE_WORDS[state.status] ?? state.status;
  const time = toolTime(state);
  el.querySelector(".tool-time").textContent = time && state.status !== "running" ? `in ${time}` : time;
  const error = el.querySelector(".tool-error");
  error.hidden = state.status !== "error";
  error.textContent = inert(state.error ?? "");
  // Keep a fold the reader opened open when the call moves on.
  const io = el.querySelector(".tool-io");
  const open = new Set([...io.querySelectorAll("details[open]")].map((d) => d.dataset.fold));
  const folds = [];
  if (state.input && state.input !== "{}") folds.push(["input", fold("Input", pretty(state.input))]);
  if (state.output !== null && state.output !== undefined) {
    const shown = UTF8.encode(state.output).length;
    const whole = Math.max(state.output_size, shown);
    const extra = whole > shown ? `first ${size(shown)} of ${size(whole)}` : size(whole);
    folds.push(["output", fold("Output", state.output, extra)]);
  }
  for (const [name, details] of folds) {
    details.dataset.fold = name;
    details.open = open.has(name);
  }
  io.replaceChildren(...folds.map(([, details]) => details));
  return el;
}

// Characters as the server counts them (code points), for a delta's offset.
const characters = (text) => [...text].length;

export function reasoningCard(part, card) {
  const el = card ?? h("details", { class: "part reasoning" }, h("summary", {}, "Thinking"), h("div", { class: "reasoning-text" }));
  el.querySelector(".reasoning-text").textContent = inert(part.body.text);
  el.textLength = characters(part.body.text);
  return el;
}

// A live delta (`reasoning` event) appended to the card of its part in place: only the
// characters past what the card holds; a delta past its end waits for the whole part.
export function growReasoning(card, chunk) {
  if (!card || chunk.offset > card.textLength) return;
  const added = [...chunk.chunk].slice(card.textLength - chunk.offset).join("");
  if (!added) return;
  const text = card.querySelector(".reasoning-text");
  const node = text.lastChild ?? text.appendChild(document.createTextNode(""));
  node.appendData(inert(added));
  card.textLength += characters(added);
}

export function subtaskCard(part) {
  const { agent, description } = part.body;
  return h("div", { class: "part subtask" }, "Subtask for ", h("strong", {}, inert(agent)), description ? `: ${inert(description)}` : "");
}

export function patchCard(part) {
  const files = part.body.files ?? [];
  return h(
    "div",
    { class: "part patch" },
    `Changed ${files.length} file${files.length === 1 ? "" : "s"}: `,
    h("span", { class: "patch-files" }, files.map((f) => inert(f)).join(", ")),
  );
}

// The card of a part, new or updated in place; null for parts not shown (steps, agents).
export function partCard(part, card) {
  switch (part.type) {
    case "tool":
      return toolCard(part, card);
    case "reasoning":
      return part.body.text ? reasoningCard(part, card) : null;
    case "subtask":
      return card ?? subtaskCard(part);
    case "patch":
      return patchCard(part);
    case "turn-diff":
      return diffCard(part);
    default:
      return null;
  }
}

const TODO_WORDS = { pending: "to do", in_progress: "doing", completed: "done", cancelled: "cancelled" };

// The agent's todo list: one item each, its status as a word and a mark (CSS).
export function todoItems(todos) {
  return todos.map((todo) =>
    h(
      "li",
      { class: "todo", dataset: { status: todo.status, priority: todo.priority } },
      h("span", { class: "todo-text" }, inert(todo.content)),
      h("span", { class: "todo-status" }, TODO_WORDS[todo.status] ?? inert(todo.status)),
    ),
  );
}

// Tokens and cost of a reply from its step-finish parts.
export function usage(steps) {
  const total = { input: 0, output: 0, reasoning: 0, cache: 0, cost: 0 };
  for (const { tokens, cost } of steps) {
    total.input += tokens.input;
    total.output += tokens.output;
    total.reasoning += tokens.reasoning;
    total.cache += tokens.cache_read;
    total.cost += cost;
  }
  return total;
}

const count = (n) => n.toLocaleString("en");
export function usageLine(total) {
  const words = [`${count(total.input)} tokens in`, `${count(total.output)} out`];
  if (total.reasoning) words.push(`${count(total.reasoning)} reasoning`);
  if (total.cache) words.push(`${count(total.cache)} cached`);
  words.push(total.cost === 0 ? "$0" : `$${total.cost < 0.01 ? total.cost.toPrecision(2) : total.cost.toFixed(2)}`);
  return words.join(" · ");
}
