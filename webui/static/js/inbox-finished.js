// The inbox page's "Finished since you last looked": replies that completed, failed or
// lost their machine since the user marked the list seen. News only: the header badge
// counts what waits for the user (permissions and questions), not these.
import { api } from "./api.js";
import { h, showError, timeAgo } from "./dom.js";

const section = document.getElementById("inbox-finished");
const list = document.getElementById("inbox-finished-list");
const markButton = document.getElementById("inbox-mark-seen");
const errorBox = document.getElementById("inbox-error");
const ENDINGS = { completed: "Finished", failed: "Failed", interrupted: "Interrupted" };

let shown = [];

function row(reply) {
  const ending = ENDINGS[reply.status] ?? reply.status;
  return h(
    "li",
    { class: `finished-item ${reply.status}`, dataset: { message: reply.message_id } },
    h("a", { href: reply.url }, `${ending} in ${reply.worker} on ${reply.machine}`),
    " ",
    h("span", { class: "muted", title: reply.finished_at }, timeAgo(reply.finished_at)),
    reply.preview ? h("p", { class: "preview" }, reply.preview) : null,
  );
}

/** Show the finished replies (newest first) the stream sent. */
export function renderFinished(finished) {
  if (!section) return;
  shown = finished;
  markButton.hidden = finished.length === 0;
  if (finished.length === 0) {
    list.replaceChildren(h("p", { class: "empty" }, "No replies finished since you last looked."));
    return;
  }
  list.replaceChildren(h("ul", { class: "finished-list" }, ...finished.map(row)));
}

// Seen up to the newest reply shown: one that ends while the user reads stays listed.
async function markSeen() {
  if (shown.length === 0) return;
  showError(errorBox, "");
  markButton.disabled = true;
  try {
    await api("POST", "/api/inbox/seen", { until: shown[0].finished_at });
    renderFinished([]); // the stream confirms it a moment later
  } catch (error) {
    showError(errorBox, error.message);
  } finally {
    markButton.disabled = false;
  }
}

if (markButton) markButton.addEventListener("click", markSeen);
