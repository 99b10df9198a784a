// Server-Sent Events that come back by themselves, with a "Reconnecting…" note while down.
//
// EventSource retries on its own after a dropped connection and sends Last-Event-ID,
// so a stream resumes where it stopped. When it gives up (an HTTP error answer), we
// open a new one after a backoff with jitter, asking `url()` again for the resume point.

const down = new Set();
// After this long in the background, a connection that still looks open is not trusted.
const STALE_AFTER_MS = 30000;

function showState() {
  const note = document.getElementById("connection");
  if (!note) return;
  note.hidden = down.size === 0;
  note.textContent = down.size === 0 ? "" : "Reconnecting…";
  document.body.classList.toggle("offline", down.size > 0);
}

async function signedIn() {
  try {
    const response = await fetch("/api/session", { credentials: "same-origin" });
    return response.status !== 401;
  } catch (_) {
    return true; // the server is down: keep trying
  }
}

export function live(url, handlers) {
  const key = {};
  let source = null;
  let stopped = false;
  let failures = 0;
  let timer = 0;

  const setDown = (isDown) => {
    if (isDown) down.add(key);
    else down.delete(key);
    showState();
  };

  const retryLater = () => {
    source.close();
    const delay = Math.random() * Math.min(15000, 500 * 2 ** failures) + 250;
    failures += 1;
    timer = window.setTimeout(async () => {
      if (stopped) return;
      if (!(await signedIn())) {
        window.location.assign("/login");
        return;
      }
      connect();
    }, delay);
  };

  function connect() {
    source = new EventSource(url());
    source.addEventListener("open", () => {
      failures = 0;
      setDown(false);
    });
    for (const [name, handle] of Object.entries(handlers)) {
      if (name === "error") continue;
      source.addEventListener(name, (event) => handle(JSON.parse(event.data), event));
    }
    source.addEventListener("error", (event) => {
      if (event.data) {
        // The server's own `error` event: one sentence, then the stream ends.
        handlers.error?.(JSON.parse(event.data));
        return;
      }
      if (stopped) return;
      setDown(true);
      if (source.readyState === EventSource.CLOSED) retryLater();
    });
  }

  // A phone that sleeps drops (or silently freezes) the connection. When the page is
  // shown again, reconnect at once rather than after the backoff; `url()` carries the
  // resume point, so the stream catches up without a gap.
  let hiddenAt = 0;
  const onVisibility = () => {
    if (document.visibilityState === "hidden") {
      hiddenAt = Date.now();
      return;
    }
    const away = hiddenAt ? Date.now() - hiddenAt : 0;
    hiddenAt = 0;
    if (stopped || (source.readyState === EventSource.OPEN && away < STALE_AFTER_MS)) return;
    window.clearTimeout(timer);
    source.close();
    connect();
  };
  document.addEventListener("visibilitychange", onVisibility);

  connect();
  return {
    close() {
      stopped = true;
      document.removeEventListener("visibilitychange", onVisibility);
      window.clearTimeout(timer);
      source?.close();
      setDown(false);
    },
  };
}
