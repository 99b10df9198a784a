// The header's inbox badge on every page: how many requests wait for the user.
//
// Live from GET /api/inbox/stream?count=1, a light stream that sends only the count
// (no polling). The inbox page has the full stream open already and passes its count
// on with an "inbox-count" event, so there the badge opens none.
import { live } from "./live.js";

const badge = document.getElementById("inbox-count");

function show(count) {
  badge.textContent = String(count);
  badge.hidden = count === 0;
  badge.parentElement.setAttribute("aria-label", count ? `Inbox, ${count} waiting` : "Inbox");
}

if (badge) {
  document.addEventListener("inbox-count", (event) => show(event.detail));
  if (!document.getElementById("inbox")) {
    live(() => "/api/inbox/stream?count=1", { count: (data) => show(data.waiting) });
  }
}
