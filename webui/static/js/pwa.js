// The installable app: every page registers the service worker (webui/static/sw.js).
if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {
    // No service worker (an insecure origin, a private window): the app works without.
  });
}
