// "Clone repository" in the folder picker: a git_clone command into a new folder, followed
// live on its progress stream (GET /api/commands/{id}/stream), cancellable.
import { api } from "./api.js";
import { enterClicks, h } from "./dom.js";

export const joinPath = (path, name) => (path ? `${path}/${name}` : name);

// "https://host/team/app.git" and "git@host:team/app.git" both give "app".
export function folderNameFromUrl(url) {
  const last = url.trim().replace(/[/\\]+$/, "").split(/[/:]/).pop() ?? "";
  return last.replace(/\.git$/i, "");
}

// The clone form under the picker: URL, folder name (from the URL until the user types one),
// live progress, Cancel, then "Add worker here". `open(parent)` shows the parent folder again.
export function cloneForm(machineId, input, toggle, open) {
  const url = h("input", { name: "clone_url", type: "text", inputmode: "url", autocomplete: "off", spellcheck: "false", placeholder: "https://github.com/owner/repo.git" });
  const name = h("input", { name: "clone_name", autocomplete: "off", maxlength: "255" });
  const where = h("span", { class: "hint" });
  const go = h("button", { type: "button", class: "primary" }, "Clone");
  const cancel = h("button", { type: "button", class: "ghost", hidden: true }, "Cancel clone");
  const bar = h("progress", { max: "100", value: "0", hidden: true, "aria-label": "Clone progress" });
  const line = h("p", { class: "hint clone-line", role: "status", "aria-live": "polite" });
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const useIt = h("button", { type: "button", class: "primary", hidden: true }, "Add worker here");
  const section = h("div", { class: "clone", hidden: true },
    h("label", {}, "Repository URL", url),
    h("label", {}, "Clone into folder", name), where,
    h("p", { class: "hint" }, "https://, http://, ssh://, git:// or user@host:path URLs; private repositories need the machine's own git credentials."),
    bar, line, error,
    h("div", { class: "actions" }, cancel, go, useIt));
  let named = false;
  let parent = "";
  let running = null;

  // On a phone the dialog scrolls: bring what just changed into view.
  const reveal = (el) => el.scrollIntoView({ block: "nearest" });
  const say = (message) => {
    error.textContent = message || "";
    error.hidden = !message;
    if (message) reveal(error);
  };
  url.addEventListener("input", () => { if (!named) name.value = folderNameFromUrl(url.value); });
  enterClicks(url, go);
  enterClicks(name, go);
  name.addEventListener("input", () => { named = name.value.trim() !== ""; });

  function idle() {
    go.disabled = false;
    url.disabled = name.disabled = false;
    cancel.hidden = true;
  }

  function follow(command) {
    const source = new EventSource(`/api/commands/${command.command_id}/stream`);
    running = { command, source };
    source.addEventListener("command", (event) => {
      const latest = JSON.parse(event.data).command;
      bar.hidden = false;
      bar.value = latest.progress;
      line.textContent = latest.status === "pending" ? "Waiting for the machine…" : (latest.progress_line || "Cloning…");
      if (latest.status !== "done" && latest.status !== "failed") return;
      source.close();
      running = null;
      idle();
      if (latest.status === "failed") {
        bar.hidden = true;
        line.textContent = "";
        say(latest.error);
        return;
      }
      const made = latest.result?.path ?? joinPath(parent, name.value.trim());
      line.textContent = `Cloned into ${made}.`;
      useIt.hidden = false;
      go.hidden = true;
      reveal(useIt);
      useIt.onclick = () => {
        input.value = made;
        input.form?.requestSubmit();
      };
      // The parent again, so the new folder shows in the list; the field names the clone.
      open(parent, { keepClone: true }).then(() => { input.value = made; });
    });
    source.addEventListener("error", (event) => {
      if (event.data) {
        source.close();
        running = null;
        idle();
        say(JSON.parse(event.data).error);
      }
    });
  }

  go.addEventListener("click", async () => {
    say("");
    useIt.hidden = true;
    go.disabled = true;
    try {
      const answer = await api("POST", `/api/machines/${machineId}/commands`, {
        kind: "git_clone", url: url.value.trim(), path: joinPath(parent, name.value.trim()),
      });
      url.disabled = name.disabled = true;
      cancel.hidden = false;
      bar.hidden = false;
      bar.value = 0;
      line.textContent = answer.notice || "Starting the clone…";
      reveal(cancel);
      follow(answer.command);
    } catch (failure) {
      go.disabled = false;
      say(failure.message);
    }
  });

  cancel.addEventListener("click", async () => {
    if (!running) return;
    cancel.disabled = true;
    try {
      await api("POST", `/api/commands/${running.command.command_id}/cancel`);
    } catch (failure) {
      say(failure.message);
    } finally {
      cancel.disabled = false;
    }
  });

  return {
    box: section,
    start(folder) {
      if (running) return;
      parent = folder;
      where.textContent = folder ? `Goes into ${folder}/` : "Goes into the machine's root folder.";
      url.value = name.value = "";
      named = false;
      bar.hidden = true;
      line.textContent = "";
      useIt.hidden = true;
      go.hidden = false;
      say("");
      url.focus();
    },
    running: () => running !== null,
    close() {
      running?.source.close();
      running = null;
      idle();
      section.hidden = true;
      toggle.setAttribute("aria-expanded", "false");
    },
  };
}
