// Undo and redo of turns: an Undo button on each reply whose turn the agent recorded, the
// undone messages dimmed and marked, and a bar with Redo. The machine reverts the agent (its
// file changes too); the session record says what is undone and whether it is done yet.
import { api } from "./api.js";
import { $, h, showError } from "./dom.js";


export class TurnUndo {
  // `conversation` gives the session, its message entries (in order) and the replies with turns.
  constructor(conversation) {
    this.conversation = conversation;
    $("redo-turns").addEventListener("click", () => this.act("redo"));
  }

  async act(what, messageId) {
    const { session, errorBox } = this.conversation;
    if (!session) return;
    const body = what === "undo" ? { message_id: messageId } : undefined;
    try {
      const { session: changed } = await api("POST", `/api/sessions/${session.chat_session_id}/${what}`, body);
      this.conversation.update(changed);
    } catch (error) {
      showError(errorBox, error.message);
    }
  }

  render() {
    const { session, entries, changes } = this.conversation;
    if (!session || !entries) return;
    const pending = session.undo_applied < session.undo_requests;
    const open = session.status !== "terminated";
    const order = [...entries];
    const from = order.findIndex(([id]) => id === session.undone_from);
    // Messages sent after the undo are not undone (and the agent has dropped the undone turns).
    const at = session.undone_at ? new Date(session.undone_at) : null;
    const before = (entry) => !at || new Date(entry.li.querySelector("time").getAttribute("datetime")) <= at;
    const isUndone = order.map(([, entry], i) => from >= 0 && before(entry) && (i >= from || (i === from - 1 && entry.li.classList.contains("user"))));
    const later = from >= 0 && order.some(([, entry]) => !before(entry));
    changes.setUndone(new Set(order.filter((_, i) => isUndone[i]).map(([id]) => id)));
    order.forEach(([id, entry], i) => {
      // The undone reply, every later message, and the prompt it answered.
      const undone = isUndone[i];
      entry.li.classList.toggle("undone", undone);
      const turn = changes.turns.has(id) && entry.finished;
      if (turn && !entry.undoButton) {
        entry.undoButton = h("button", { type: "button", class: "ghost undo-turn", onclick: () => this.act("undo", id) }, "Undo");
        entry.li.querySelector(".msg-meta").append(" ", entry.undoButton);
      }
      if (entry.undoButton) entry.undoButton.hidden = !open || pending || undone;
    });
    const bar = $("undo-bar");
    bar.hidden = (from < 0 || later) && !pending && !session.undo_error;
    let words = "Undone: these turns and their file changes are reverted.";
    if (pending) words = session.undone_from ? "Undoing…" : "Redoing…";
    else if (session.undo_error) words = `Undo failed: ${session.undo_error}`;
    $("undo-status").textContent = words;
    $("redo-turns").hidden = from < 0 || later || pending || !open;
  }
}
