// The folder picker of "Add worker": browse the machine's tree (list_dir via /tree), make a
// folder (mkdir), clone a repository into a new one (git_clone, following its progress
// stream). The typed path beside it always works; browsing needs the machine online.
import { api } from "./api.js";
import { h } from "./dom.js";

const join = (path, name) => (path ? `${path}/${name}` : name);

// "https://host/team/app.git" and "git@host:team/app.git" both give "app".
export function folderNameFromUrl(url) {
  const last = url.trim().replace(/[/\\]+$/, "").split(/[/:]/).pop() ?? "";
  return last.replace(/\.git$/i, "");
}

// A folder drawn in CSS (no emoji font needed: Debian's chromium has none by default).
const folderIcon = () => h("span", { class: "folder-icon", "aria-hidden": "true" });

async function finished(answer) {
  const command = answer.command;
  if (command.status === "failed") throw new Error(command.error || "The machine could not do that.");
  if (command.status !== "done") throw new Error(answer.notice || "The machine has not answered yet. Try again, or type the folder.");
  return command.result;
}

// Enter in a picker field does that field's action, not the Add-worker form's submit.
function enterClicks(field, button) {
  field.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    event.preventDefault();
    if (!button.disabled && !button.hidden) button.click();
  });
}

export function folderPicker(container, machineId, input) {
  const crumbs = h("nav", { class: "crumbs", "aria-label": "Current folder" });
  const entries = h("ul", { class: "folder-list" });
  const status = h("p", { class: "hint", role: "status" });
  const newName = h("input", { "aria-label": "New folder name", placeholder: "New folder name", maxlength: "255" });
  const create = h("button", { type: "button", class: "ghost" }, "Create folder");
  const cloneToggle = h("button", { type: "button", class: "ghost", "aria-expanded": "false" }, "Clone repository");
  const clone = cloneForm();
  const box = h("div", { class: "picker" },
    h("p", { class: "picker-label" }, "Pick a folder on the machine"), crumbs, entries, status,
    h("div", { class: "new-folder" }, newName, create, cloneToggle), clone.box);
  let current = "";
  let generation = 0;

  cloneToggle.addEventListener("click", () => {
    const show = clone.box.hidden;
    clone.box.hidden = !show;
    cloneToggle.setAttribute("aria-expanded", String(show));
    if (show) clone.start(current);
  });

  // URL, folder name (from the URL until the user types one), live progress, Cancel.
  function cloneForm() {
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
        const made = latest.result?.path ?? join(parent, name.value.trim());
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
          kind: "git_clone", url: url.value.trim(), path: join(parent, name.value.trim()),
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
        cloneToggle.setAttribute("aria-expanded", "false");
      },
    };
  }

  function showCrumbs(path) {
    const parts = path ? path.split("/") : [];
    const links = [h("button", { type: "button", class: "link", onclick: () => open("") }, "root")];
    parts.forEach((part, i) => {
      const target = parts.slice(0, i + 1).join("/");
      links.push(" / ", h("button", { type: "button", class: "link", onclick: () => open(target) }, part));
    });
    crumbs.replaceChildren(...links);
  }

  async function open(path, { keepClone = false } = {}) {
    const mine = ++generation;
    if (!keepClone && !clone.running()) clone.close();
    current = path;
    input.value = path;
    showCrumbs(path);
    entries.replaceChildren();
    status.textContent = "Loading folders…";
    status.className = "hint progress";
    container.replaceChildren(box);
    try {
      const result = await finished(await api("POST", `/api/machines/${machineId}/tree`, { path, wait: 8 }));
      if (mine !== generation) return;
      // Dot-folders (.cache, .npm …) after the others: they are rarely where a project lives.
      const all = result.entries.filter((e) => e.kind === "dir");
      const folders = [...all.filter((e) => !e.name.startsWith(".")), ...all.filter((e) => e.name.startsWith("."))];
      entries.replaceChildren(...folders.map((entry) => h("li", {},
        h("button", { type: "button", class: "folder", onclick: () => open(join(path, entry.name)) },
          folderIcon(), entry.name,
          entry.is_git_repo ? h("span", { class: "hint" }, "git") : null))));
      status.textContent = folders.length ? (result.next_cursor ? "Only the first folders are listed; type the path of others." : "") : "No folders here.";
    } catch (error) {
      if (mine !== generation) return;
      if (error.status === 404) {
        container.replaceChildren(); // a server without folder browsing: typing the path it is
        return;
      }
      status.textContent = error.message;
    }
    status.className = "hint";
  }

  enterClicks(newName, create);
  create.addEventListener("click", async () => {
    const name = newName.value.trim();
    if (!name) return;
    create.disabled = true;
    try {
      const answer = await api("POST", `/api/machines/${machineId}/commands`, { kind: "mkdir", path: join(current, name) });
      let command = answer.command;
      for (let i = 0; i < 40 && command.status !== "done" && command.status !== "failed"; i++) {
        await new Promise((resolve) => window.setTimeout(resolve, 250));
        command = (await api("GET", `/api/commands/${command.command_id}`)).command;
      }
      await finished({ command, notice: answer.notice });
      newName.value = "";
      await open(join(current, name));
    } catch (error) {
      status.textContent = error.message;
    } finally {
      create.disabled = false;
    }
  });

  function offline() {
    generation += 1;
    status.className = "hint";
    status.textContent = "The machine is offline: type the folder below, or start the machine to browse.";
    crumbs.replaceChildren();
    entries.replaceChildren();
    container.replaceChildren(status);
    clone.close();
  }

  return { open, offline };
}
