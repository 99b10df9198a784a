// A worker's permission policy as a form: ask / allow / deny for each tool its agent uses.
import { h } from "./dom.js";

export const SAFE_POLICY = { bash: "ask", edit: "ask", webfetch: "ask", external_directory: "deny" };

const TOOLS = [
  ["bash", "Run commands", "shell commands (bash)"],
  ["edit", "Edit files", "write and change files in the folder"],
  ["webfetch", "Fetch web pages", "read URLs from the internet"],
  ["external_directory", "Outside the folder", "files outside the worker's folder"],
];
const ACTIONS = [["ask", "Ask first"], ["allow", "Allow"], ["deny", "Deny"]];

// The selects for `policy`, named after the tools; `prefix` keeps ids unique per dialog.
export function policyFields(container, policy, prefix) {
  const rows = TOOLS.map(([tool, label, hint]) => {
    const id = `${prefix}-${tool}`;
    const select = h("select", { id, name: tool, "aria-describedby": `${id}-hint` },
      ACTIONS.map(([value, text]) => h("option", { value, selected: value === (policy[tool] ?? SAFE_POLICY[tool]) }, text)));
    return h("div", { class: "policy-row" },
      h("label", { for: id }, label, h("span", { class: "hint", id: `${id}-hint` }, hint)),
      select);
  });
  container.replaceChildren(...rows);
}

export function readPolicy(container) {
  const policy = {};
  for (const select of container.querySelectorAll("select")) policy[select.name] = select.value;
  return policy;
}

const WORDS = { ask: "asks", allow: "allowed", deny: "denied" };

// "commands: asks · edits: asks · web: asks · outside: denied"
export function policySummary(policy) {
  const short = { bash: "commands", edit: "edits", webfetch: "web", external_directory: "outside" };
  return Object.entries(short).map(([tool, word]) => `${word}: ${WORDS[policy[tool] ?? SAFE_POLICY[tool]]}`).join(" · ");
}
