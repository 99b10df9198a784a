// A stand-in for Convex's sync protocol (the WebSocket at /api/sync), for tests.
//
// It is NOT Convex's implementation: it speaks the documented message shapes of the
// protocol (convex/dist/*/browser/sync/protocol.d.ts, the same ones the Rust client in
// the `convex` Python package sends and checks) well enough for a client to subscribe:
// Connect, Authenticate, ModifyQuerySet (Add/Remove) answered by a Transition from the
// client's current state version to the new one with QueryUpdated/QueryFailed/
// QueryRemoved, Mutation/Action answered by MutationResponse/ActionResponse, and a Ping
// every 10 s (the client drops a connection silent for 30 s). After any write to the
// deployment, every open subscription is run again and the changed values are pushed
// in one Transition, as a deployment pushes changed query results.
//
// The official client replaces the URL's path with /api/sync, so each deployment that
// offers sync listens on a port of its own (see server.mjs). SYNC_DEBUG=1 logs every
// message both ways to stderr.

import { WebSocketServer } from "ws";

const PING_MS = 10_000;

/** "accounts.js:count" (how the client names a function) as the harness names it. */
function modulePath(udfPath) {
  return udfPath.replace(/\.js:/, ":");
}

/** The 8 little-endian bytes of `n`, base64: how the protocol writes a timestamp. */
function encodeTs(n) {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64LE(BigInt(n));
  return bytes.toString("base64");
}

/**
 * Sync connections of one deployment. `run(path, args)` evaluates a public query and
 * resolves to {value} or {errorMessage, errorData?}; `call(kind, path, args)` runs a
 * mutation or action the same way. Protocol numbers (versions, query IDs) must be JSON
 * integers; the client reads every number in a value as a float, as Convex writes them.
 */
export function syncEndpoint({ run, call }) {
  const sockets = new Set();
  const wss = new WebSocketServer({ noServer: true });
  let ts = 0;

  function send(socket, message) {
    if (process.env.SYNC_DEBUG) console.error(">>", JSON.stringify(message));
    socket.send(JSON.stringify(message));
  }

  async function evaluate(query) {
    const result = await run(query.udfPath, query.args);
    const text = JSON.stringify(result);
    return { text, result };
  }

  function modification(queryId, result) {
    if ("value" in result) {
      return {
        type: "QueryUpdated",
        queryId,
        value: result.value,
        logLines: [],
        journal: null,
      };
    }
    const failed = {
      type: "QueryFailed",
      queryId,
      errorMessage: result.errorMessage,
      logLines: [],
      journal: null,
    };
    if ("errorData" in result) failed.errorData = result.errorData;
    return failed;
  }

  function transition(state, endVersion, modifications) {
    const message = {
      type: "Transition",
      startVersion: {
        querySet: state.version.querySet,
        identity: state.version.identity,
        ts: encodeTs(state.version.ts),
      },
      endVersion: {
        querySet: endVersion.querySet,
        identity: endVersion.identity,
        ts: encodeTs(endVersion.ts),
      },
      modifications,
    };
    state.version = endVersion;
    send(state.socket, message);
  }

  /** Run every subscription of `state` again; push those whose value changed. */
  async function refresh(state) {
    const changed = [];
    for (const [queryId, query] of state.queries) {
      const { text, result } = await evaluate(query);
      if (text !== query.last) {
        query.last = text;
        changed.push(modification(queryId, result));
      }
    }
    if (changed.length > 0 && state.socket.readyState === state.socket.OPEN) {
      transition(state, { ...state.version, ts: ++ts }, changed);
    }
  }

  // One refresh at a time per connection, in order: a Transition must start where the last ended.
  function enqueue(state, work) {
    state.queue = state.queue
      .then(work)
      .catch((error) => console.error("sync stand-in:", error));
    return state.queue;
  }

  async function handle(state, message) {
    switch (message.type) {
      case "Connect":
        return;
      case "Authenticate":
        return transition(
          state,
          { ...state.version, identity: message.baseVersion + 1 },
          [],
        );
      case "ModifyQuerySet": {
        const modifications = [];
        for (const change of message.modifications) {
          if (change.type === "Add") {
            const query = {
              udfPath: modulePath(change.udfPath),
              args: change.args?.[0] ?? {},
            };
            const { text, result } = await evaluate(query);
            query.last = text;
            state.queries.set(change.queryId, query);
            modifications.push(modification(change.queryId, result));
          } else {
            state.queries.delete(change.queryId);
            modifications.push({
              type: "QueryRemoved",
              queryId: change.queryId,
            });
          }
        }
        return transition(
          state,
          { ...state.version, querySet: message.newVersion, ts: ++ts },
          modifications,
        );
      }
      case "Mutation":
      case "Action": {
        const kind = message.type === "Mutation" ? "mutation" : "action";
        const result = await call(
          kind,
          modulePath(message.udfPath),
          message.args?.[0] ?? {},
        );
        const reply = {
          type: `${message.type}Response`,
          requestId: message.requestId,
          logLines: [],
        };
        if ("value" in result)
          Object.assign(reply, { success: true, result: result.value });
        else
          Object.assign(
            reply,
            { success: false, result: result.errorMessage },
            "errorData" in result ? { errorData: result.errorData } : {},
          );
        if (kind === "mutation") reply.ts = encodeTs(++ts);
        send(state.socket, reply);
        void changed(); // queued after this message's own work
        return;
      }
      default:
        return;
    }
  }

  /** After a write: every connection runs its subscriptions again. */
  function changed() {
    return Promise.all(
      [...sockets].map((state) => enqueue(state, () => refresh(state))),
    );
  }

  function upgrade(request, socket, head) {
    wss.handleUpgrade(request, socket, head, (ws) => {
      const state = {
        socket: ws,
        version: { querySet: 0, identity: 0, ts: 0 },
        queries: new Map(),
        queue: Promise.resolve(),
      };
      sockets.add(state);
      const ping = setInterval(
        () => ws.readyState === ws.OPEN && send(ws, { type: "Ping" }),
        PING_MS,
      );
      ws.on("message", (data) => {
        if (process.env.SYNC_DEBUG) console.error("<<", String(data));
      });
      ws.on("message", (data) =>
        enqueue(state, () => handle(state, JSON.parse(String(data)))),
      );
      ws.on("close", () => {
        clearInterval(ping);
        sockets.delete(state);
      });
    });
  }

  function close() {
    for (const state of sockets) state.socket.terminate();
    wss.close();
  }

  return { upgrade, changed, close };
}
