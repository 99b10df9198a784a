// The service worker: the app shell offline, push notifications, and their Allow/Deny buttons.
//
// Served as /sw.js so its scope is the whole app. Pages always come from the network
// (they need the session); the shell (styles, scripts, icons) is cached at install and
// refreshed in the background, so a phone that wakes without a network still shows the app.

const CACHE = "orchestrator-shell-v1";
const SHELL = [
  "/static/style.css",
  "/static/chat.css",
  "/static/offline.html",
  "/static/js/api.js",
  "/static/js/dom.js",
  "/static/js/live.js",
  "/static/js/theme.js",
  "/static/js/pwa.js",
  "/static/icons/icon-192.png",
  "/static/icons/icon-512.png",
  "/static/manifest.webmanifest",
];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(SHELL))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((name) => name !== CACHE).map((name) => caches.delete(name))))
      .then(() => self.clients.claim()),
  );
});

async function fromShell(request) {
  const cache = await caches.open(CACHE);
  const cached = await cache.match(request);
  const fresh = fetch(request)
    .then((response) => {
      if (response.ok) cache.put(request, response.clone());
      return response;
    })
    .catch(() => cached);
  return cached ?? fresh;
}

async function page(request) {
  try {
    return await fetch(request);
  } catch (_) {
    return (await caches.match("/static/offline.html")) ?? Response.error();
  }
}

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  if (event.request.mode === "navigate") {
    event.respondWith(page(event.request));
  } else if (url.pathname.startsWith("/static/")) {
    event.respondWith(fromShell(event.request));
  }
  // The API and the live streams always go to the network.
});

self.addEventListener("push", (event) => {
  let message = {};
  try {
    message = event.data ? event.data.json() : {};
  } catch (_) {
    message = { title: "OpenCode Orchestrator", body: event.data?.text() ?? "" };
  }
  const options = {
    body: message.body ?? "",
    tag: message.tag,
    icon: "/static/icons/icon-192.png",
    badge: "/static/icons/icon-192.png",
    data: { url: message.url ?? "/", permissionId: message.permissionId ?? null },
    actions: (message.actions ?? []).map((a) => ({ action: a.action, title: a.title })),
    requireInteraction: Boolean(message.permissionId),
  };
  event.waitUntil(self.registration.showNotification(message.title ?? "OpenCode Orchestrator", options));
});

// Answer a permission request from the notification, without opening the app.
async function answer(permissionId, reply) {
  const session = await fetch("/api/session", { credentials: "same-origin" });
  if (!session.ok) return "Sign in to answer this request.";
  const { csrf_token: csrf } = await session.json();
  const response = await fetch(`/api/permissions/${encodeURIComponent(permissionId)}/answer`, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify({ answer: reply }),
  });
  if (response.ok) return null;
  const data = await response.json().catch(() => ({}));
  return data.error ?? `The server answered ${response.status}.`;
}

async function open(url) {
  const target = new URL(url, self.location.origin).href;
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  for (const client of windows) {
    if (client.url === target) return client.focus();
  }
  return self.clients.openWindow(target);
}

self.addEventListener("notificationclick", (event) => {
  const { url, permissionId } = event.notification.data ?? {};
  event.notification.close();
  if (permissionId && (event.action === "allow" || event.action === "deny")) {
    event.waitUntil(
      answer(permissionId, event.action === "allow" ? "once" : "reject")
        .catch(() => "Cannot reach the server. Open the app to answer.")
        .then((problem) =>
          problem
            ? self.registration.showNotification("The request was not answered", {
                body: problem,
                tag: event.notification.tag,
                data: { url, permissionId: null },
              })
            : undefined,
        ),
    );
    return;
  }
  event.waitUntil(open(url ?? "/"));
});
