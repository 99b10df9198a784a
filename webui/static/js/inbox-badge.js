// The header's inbox badge on every page: how many requests wait for the user, live.
import { live } from "./live.js";

const badge = document.getElementById("inbox-count");
if (badge) {
  live(() => "/api/inbox/stream", {
    inbox: ({ items }) => {
      badge.textContent = String(items.length);
      badge.hidden = items.length === 0;
      badge.parentElement.setAttribute("aria-label", `Inbox, ${items.length} waiting`);
    },
  });
}
