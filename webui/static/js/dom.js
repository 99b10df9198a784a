// Small DOM helpers. Text always goes in as text nodes, never as HTML.

// The page's element with this id.
export const $ = (id) => document.getElementById(id);

export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

export function timeAgo(iso) {
  if (!iso) return "never";
  const seconds = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (seconds < 45) return "just now";
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 24) return `${hours} h ago`;
  const days = Math.round(hours / 24);
  return days === 1 ? "yesterday" : `${days} days ago`;
}

// Record statuses in the words the UI uses elsewhere ("End session" ends, it does not terminate).
const STATUS_WORDS = { pending_authorization: "pending", active: "open", terminated: "ended" };

export const statusWord = (status) => STATUS_WORDS[status] ?? status;

export function badge(status) {
  return h("span", { class: `badge ${status}` }, statusWord(status));
}

// Enter in `field` clicks `button` instead of submitting the form around it.
export function enterClicks(field, button) {
  field.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    event.preventDefault();
    if (!button.disabled && !button.hidden) button.click();
  });
}

export function showError(box, message) {
  box.textContent = message || "";
  box.hidden = !message;
}

// What a list shows while it is empty: a title, a line on what goes in it, the button that adds one.
export function emptyState(title, text, label, onclick) {
  return h(
    "section",
    { class: "empty-state card" },
    h("h2", {}, title),
    h("p", {}, text),
    h("button", { type: "button", class: "primary", onclick }, label),
  );
}

// Run `work` with `button` disabled and saying `label` meanwhile; then the button is as it was.
export async function whileBusy(button, label, work) {
  const idle = button.textContent;
  button.disabled = true;
  button.textContent = label;
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.textContent = idle;
  }
}

// Send a form with its submit button disabled meanwhile; a failure shows in the form's error box.
export function onSubmit(form, send) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const submit = form.querySelector('[type="submit"]');
    submit.disabled = true;
    try {
      await send();
    } catch (error) {
      showError(form.querySelector(".error"), error.message);
    } finally {
      submit.disabled = false;
    }
  });
}

// Close buttons and Escape for every <dialog>; focus goes back where it came from.
export function openDialog(dialog) {
  const opener = document.activeElement;
  for (const button of dialog.querySelectorAll("[data-close]")) {
    button.onclick = () => dialog.close();
  }
  dialog.addEventListener("close", () => opener?.focus?.(), { once: true });
  dialog.showModal();
}

export function confirmDialog(message, action) {
  const dialog = h(
    "dialog",
    { class: "confirm", "aria-label": action },
    h("p", {}, message),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", class: "ghost", value: "cancel", "data-close": true }, "Cancel"),
      h("button", { type: "button", class: "danger", value: "ok" }, action),
    ),
  );
  document.body.append(dialog);
  return new Promise((resolve) => {
    let confirmed = false;
    dialog.querySelector(".danger").onclick = () => {
      confirmed = true;
      dialog.close();
    };
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(confirmed);
    });
    openDialog(dialog);
    dialog.querySelector(".ghost").focus();
  });
}

// `data-copy="id"` buttons copy that element's text and say so for a moment.
export function wireCopyButtons(root) {
  for (const button of root.querySelectorAll("[data-copy]")) {
    button.onclick = async () => {
      const text = document.getElementById(button.dataset.copy).textContent;
      const label = button.dataset.label ?? button.textContent;
      button.dataset.label = label;
      try {
        await navigator.clipboard.writeText(text);
        button.textContent = "Copied";
      } catch (_) {
        const range = document.createRange();
        range.selectNodeContents(document.getElementById(button.dataset.copy));
        window.getSelection().removeAllRanges();
        window.getSelection().addRange(range);
        button.textContent = "Selected: press Ctrl+C";
      }
      window.setTimeout(() => (button.textContent = label), 2000);
    };
  }
}

// Make `parent`'s children be `fresh` (elements with `data-key`), keeping every old
// element whose markup did not change, so focus and scroll survive live updates.
export function patchChildren(parent, fresh) {
  const old = new Map();
  for (const child of parent.children) if (child.dataset.key) old.set(child.dataset.key, child);
  const wanted = fresh.map((node) => {
    const existing = old.get(node.dataset.key);
    return existing && existing.outerHTML === node.outerHTML ? existing : node;
  });
  const keep = new Set(wanted);
  for (const child of [...parent.children]) if (!keep.has(child)) child.remove();
  wanted.forEach((node, index) => {
    const here = parent.children[index];
    if (here !== node) parent.insertBefore(node, here ?? null);
  });
}

// "last seen 2 min ago": an element with data-time (ISO) and an optional data-prefix.
export function timeText(prefix, iso, never = "never") {
  return h("span", { dataset: { time: iso ?? "", prefix, never } }, iso ? `${prefix}${timeAgo(iso)}` : never);
}

export function refreshTimes() {
  for (const el of document.querySelectorAll("[data-time]")) {
    const { time, prefix, never } = el.dataset;
    el.textContent = time ? `${prefix}${timeAgo(time)}` : never;
  }
}
window.setInterval(refreshTimes, 20000);
