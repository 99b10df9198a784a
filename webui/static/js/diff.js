// What a turn changed: a card per reply with its files, +/- counts and unified diffs, and
// the session's changed files beside the conversation. Everything the agent sent goes in
// as text (never HTML), terminal escapes removed, so a file name or a patch is inert.
import { h } from "./dom.js";

// CSI, OSC and two-byte escapes, as in parts.js (kept here so this module stands alone).
const ANSI = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/g;
const inert = (text) => (text ?? "").replace(ANSI, "");
const UTF8 = new TextEncoder();
const STATUS_WORDS = { added: "new", deleted: "deleted", modified: "changed" };

function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} kB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

const counts = (additions, deletions) => [
  h("span", { class: "diff-add-count" }, `+${additions}`),
  " ",
  h("span", { class: "diff-del-count" }, `−${deletions}`),
];

// A small highlighter for the code in a diff line: strings, comments and numbers, as
// spans of text. Enough to read a patch; no language is guessed.
const TOKENS = /("(?:[^"\\]|\\.)*"?|'(?:[^'\\]|\\.)*'?|`[^`]*`?)|((?:\/\/|#(?!include)|--\s).*$|\/\*.*?(?:\*\/|$))|(\b\d[\d_.]*\b)|(\b(?:def|class|return|if|else|elif|for|while|import|from|export|function|const|let|var|async|await|fn|pub|struct|impl|true|false|None|null|True|False)\b)/g;
const TOKEN_CLASS = ["", "tok-str", "tok-com", "tok-num", "tok-key"];

export function highlight(code) {
  const out = [];
  let last = 0;
  for (const match of code.matchAll(TOKENS)) {
    if (match.index > last) out.push(code.slice(last, match.index));
    const kind = match.findIndex((group, i) => i > 0 && group !== undefined);
    out.push(h("span", { class: TOKEN_CLASS[kind] }, match[0]));
    last = match.index + match[0].length;
  }
  if (last < code.length) out.push(code.slice(last));
  return out;
}

// One line of a unified diff, classed by its first character (added, removed, hunk, header).
function diffLine(line) {
  if (line.startsWith("@@")) return h("span", { class: "diff-line diff-hunk" }, line, "\n");
  if (/^(Index: |={10,}|--- |\+\+\+ |diff --git |index )/.test(line)) return h("span", { class: "diff-line diff-meta" }, line, "\n");
  const kind = line[0] === "+" ? "diff-add" : line[0] === "-" ? "diff-del" : "diff-ctx";
  return h("span", { class: `diff-line ${kind}` }, h("span", { class: "diff-sign" }, line[0] ?? " "), ...highlight(line.slice(1)), "\n");
}

function fileDiff(file) {
  const shown = UTF8.encode(file.patch).length;
  let body;
  if (file.binary) body = h("p", { class: "diff-note" }, "Binary file: no diff shown.");
  else if (!file.patch) body = h("p", { class: "diff-note" }, file.patch_size ? `Diff of ${size(file.patch_size)} not kept (the turn's diffs were too large).` : "No diff.");
  else {
    const all = inert(file.patch).replace(/\n$/, "").split("\n");
    // The header before the first hunk (Index:, ===, ---, +++) repeats the file's name.
    const first = all.findIndex((line) => line.startsWith("@@"));
    const lines = first > 0 ? all.slice(first) : all;
    body = [
      h("pre", { class: "diff" }, h("code", {}, ...lines.map(diffLine))),
      file.patch_size > shown ? h("p", { class: "diff-note" }, `Showing the first ${size(shown)} of ${size(file.patch_size)} (diff truncated, ${file.patch_size} bytes).`) : null,
    ];
  }
  return h(
    "details",
    { class: "diff-file", dataset: { file: inert(file.file), status: file.status } },
    h("summary", {}, h("span", { class: "diff-name" }, inert(file.file)), " ", h("span", { class: "diff-status" }, STATUS_WORDS[file.status] ?? inert(file.status)), " ", ...counts(file.additions, file.deletions)),
    body,
  );
}

// Lines a permission's diff may have and still be shown unfolded.
const OPEN_LINES = 40;
// Whether the user left each permission's diff open, so a re-drawn card (the inbox redraws
// on every change) keeps it as it was.
const leftOpen = new Map();

// The change an edit permission request asks for: its file and diff as a turn's file is
// shown (inert text), unfolded when short; null for a request without a file or diff.
export function editDiff(permission) {
  const patch = permission.diff ?? "";
  if (!permission.file && !patch) return null;
  const lines = patch.split("\n");
  const card = fileDiff({
    file: permission.file || "(unnamed file)",
    status: /^@@ -0,0 /m.test(patch) ? "added" : "modified",
    additions: lines.filter((l) => l.startsWith("+") && !l.startsWith("+++")).length,
    deletions: lines.filter((l) => l.startsWith("-") && !l.startsWith("---")).length,
    patch,
    patch_size: permission.diff_size ?? 0,
    binary: false,
  });
  card.classList.add("permission-diff");
  const short = lines.length <= OPEN_LINES && permission.diff_size <= UTF8.encode(patch).length;
  card.open = leftOpen.get(permission.permission_id) ?? short;
  card.addEventListener("toggle", () => leftOpen.set(permission.permission_id, card.open));
  return card;
}

// The card of a reply's turn-diff part: its files folded, each with its diff.
export function diffCard(part) {
  const { files, more_files: more } = part.body;
  if (!files.length) return null;
  const additions = files.reduce((sum, f) => sum + f.additions, 0);
  const deletions = files.reduce((sum, f) => sum + f.deletions, 0);
  const n = files.length + more;
  return h(
    "details",
    { class: "part diff-card", dataset: { agentMessage: part.body.agent_message_id } },
    h("summary", {}, `Changed ${n} file${n === 1 ? "" : "s"} `, ...counts(additions, deletions)),
    h("div", { class: "diff-files" }, ...files.map(fileDiff)),
    more ? h("p", { class: "diff-note" }, `${more} more file${more === 1 ? "" : "s"} not listed.`) : null,
  );
}

// Every file the session's turns changed, with the counts summed; a click opens the
// newest turn's diff of that file in the conversation.
export class SessionChanges {
  constructor(panel, list, count, findCard) {
    Object.assign(this, { panel, list, count, findCard });
    this.reset();
  }

  reset() {
    this.turns = new Map(); // message_id -> turn-diff body
    this.undone = new Set(); // replies whose turns are undone: their files are not listed
    this.panel.hidden = true;
    this.list.replaceChildren();
  }

  add(part) {
    this.turns.set(part.message_id, part.body);
    this.render();
  }

  setUndone(undone) {
    if ([...undone].join() === [...this.undone].join()) return;
    this.undone = undone;
    this.render();
  }

  render() {
    const files = new Map();
    for (const [messageId, body] of this.turns) {
      if (this.undone.has(messageId)) continue;
      for (const f of body.files) {
        const seen = files.get(f.file) ?? { additions: 0, deletions: 0 };
        files.set(f.file, { additions: seen.additions + f.additions, deletions: seen.deletions + f.deletions, messageId });
      }
    }
    this.panel.hidden = files.size === 0;
    this.count.textContent = String(files.size);
    this.list.replaceChildren(
      ...[...files].map(([name, f]) =>
        h(
          "li",
          { class: "change" },
          h("button", { type: "button", class: "link change-name", onclick: () => this.show(f.messageId, name) }, inert(name)),
          " ",
          ...counts(f.additions, f.deletions),
        ),
      ),
    );
  }

  show(messageId, name) {
    const card = this.findCard(messageId);
    if (!card) return;
    card.open = true;
    const file = [...card.querySelectorAll(".diff-file")].find((d) => d.dataset.file === inert(name));
    if (file) file.open = true;
    (file ?? card).scrollIntoView({ block: "start" });
  }
}
