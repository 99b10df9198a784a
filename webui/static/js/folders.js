// The folder picker of "Add worker": browse the machine's tree (list_dir via /tree), make a
// folder (mkdir), clone a repository into a new one (git_clone, following its progress
// stream). The typed path beside it always works; browsing needs the machine online.
import { api } from "./api.js";
import { cloneForm, joinPath as join } from "./clone.js";
import { enterClicks, h } from "./dom.js";

// A folder drawn in CSS (no emoji font needed: Debian's chromium has none by default).
const folderIcon = () => h("span", { class: "folder-icon", "aria-hidden": "true" });

async function finished(answer) {
  const command = answer.command;
  if (command.status === "failed") throw new Error(command.error || "The machine could not do that.");
  if (command.status !== "done") throw new Error(answer.notice || "The machine has not answered yet. Try again, or type the folder.");
  return command.result;
}

export function folderPicker(container, machineId, input) {
  const crumbs = h("nav", { class: "crumbs", "aria-label": "Current folder" });
  const entries = h("ul", { class: "folder-list" });
  const status = h("p", { class: "hint", role: "status" });
  const newName = h("input", { "aria-label": "New folder name", placeholder: "New folder name", maxlength: "255" });
  const create = h("button", { type: "button", class: "ghost" }, "Create folder");
  const cloneToggle = h("button", { type: "button", class: "ghost", "aria-expanded": "false" }, "Clone repository");
  const clone = cloneForm(machineId, input, cloneToggle, (path, options) => open(path, options));
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
