// The header's inbox badge on every page: how many requests wait for the user.
//
// It asks every few seconds while the page is visible (and at once when it is shown
// again) instead of holding a stream open: browsers allow only six connections per
// server, and the chat page already keeps two. The inbox page itself is live and
// passes its count on with an "inbox-count" event.
const badge = document.getElementById("inbox-count");
const EVERY_MS = 10000;

function show(count) {
  badge.textContent = String(count);
  badge.hidden = count === 0;
  badge.parentElement.setAttribute("aria-label", count ? `Inbox, ${count} waiting` : "Inbox");
}

async function refresh() {
  if (document.visibilityState !== "visible") return;
  try {
    const response = await fetch("/api/inbox", { credentials: "same-origin" });
    if (response.ok) show((await response.json()).items.length);
  } catch (_) {
    // Offline: the connection note says so; the next round tries again.
  }
}

if (badge) {
  document.addEventListener("inbox-count", (event) => show(event.detail));
  document.addEventListener("visibilitychange", refresh);
  window.setInterval(refresh, EVERY_MS);
  refresh();
}
