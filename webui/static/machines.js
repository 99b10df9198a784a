// The machine list: live updates over SSE, and the "Add machine" form over the JSON API.
"use strict";

const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
const tbody = document.querySelector("#machines tbody");
const errorBox = document.getElementById("error");

function cell(text, className) {
  const td = document.createElement("td");
  if (className) {
    const span = document.createElement("span");
    span.className = className;
    span.textContent = text;
    td.append(span);
  } else {
    td.textContent = text;
  }
  return td;
}

function render(summaries) {
  const rows = summaries.map(({ machine, workers }) => {
    const tr = document.createElement("tr");
    tr.append(
      cell(machine.name),
      cell(machine.status, `status ${machine.status}`),
      cell(`${workers.online} online, ${workers.ready} ready, ${workers.offline} offline, ` +
        `${workers.pending_authorization} pending`),
      cell(machine.last_heartbeat || "never"),
    );
    return tr;
  });
  if (rows.length === 0) {
    const tr = document.createElement("tr");
    tr.className = "empty";
    const td = cell("No machines yet. Add one below.");
    td.colSpan = 4;
    tr.append(td);
    rows.push(tr);
  }
  tbody.replaceChildren(...rows);
}

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = !message;
}

const events = new EventSource("/api/events");
events.addEventListener("machines", (event) => render(JSON.parse(event.data).machines));
events.addEventListener("error", (event) => {
  if (event.data) showError(JSON.parse(event.data).error);
});

document.getElementById("add-machine").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const response = await fetch("/api/machines", {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken },
    body: JSON.stringify({ name: form.elements.name.value }),
  });
  const body = await response.json();
  if (!response.ok) {
    showError(body.error);
    return;
  }
  showError("");
  form.reset();
  document.getElementById("new-machine-command").textContent = body.command;
  document.getElementById("new-machine").hidden = false;
});
