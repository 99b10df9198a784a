// A loopback stand-in for a Convex deployment, for tests.
//
// It serves Convex's HTTP function API -- POST /<deployment>/api/query|mutation|action
// with {"path": "module:function", "format": "convex_encoded_json", "args": {...}},
// answered with {"status": "success", "value": ...} (HTTP 200) or
// {"status": "error", "errorMessage": ..., "errorData": ...} (HTTP 560, as Convex
// does) -- and runs the real functions of ../convex with convex-test, so a client
// of the real API reaches the real TypeScript. POST /_harness/deployments creates
// an empty deployment and answers {"id": ...} (a body {"transactionLimits": {...}}
// lowers Convex's per-transaction limits for it, to reach them with little data);
// GET /_harness/deployments/<id>/calls answers how many times each function was
// called; GET /_harness/deployments/<id>/writes answers {"documents": n}, the documents
// written so far (a document over Convex's 1 MiB is refused, as a deployment does); DELETE /_harness/deployments/<id> drops one. With {"sync": true} the
// deployment also gets a port of its own ({"id", "port"}) serving the HTTP API under
// /api/... and a stand-in for Convex's sync protocol at /api/sync (see sync.mjs),
// because the official client replaces the URL's path with /api/sync. Binds 127.0.0.1 only; prints "convex harness listening on <url>";
// exits when its standard input closes or on SIGTERM/SIGINT.
//
// The clock the functions see moves on by at least 1 ms per reading, like the
// FakeClock the Python contract suite gives the other backends, so two calls
// in the same millisecond still get distinct, ordered timestamps.
//
// Environment: ORCHESTRATOR_SERVER_SECRET (passed on to the functions; unset to
// test a deployment that was never configured), HARNESS_PORT (default 0: any).

import { createServer as createHttpServer } from "node:http";
import { fileURLToPath } from "node:url";
import { dirname, resolve } from "node:path";
import { createServer as createViteServer } from "vite";
import { syncEndpoint } from "./sync.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const MAX_BODY_BYTES = 32 * 1024 * 1024;
const UDF_FAILED = 560;

const vite = await createViteServer({
  root,
  configFile: false,
  logLevel: "error",
  appType: "custom",
  server: { middlewareMode: true, hmr: false, watch: null, ws: false },
  optimizeDeps: { noDiscovery: true, include: [] },
  ssr: { noExternal: ["convex-test"] },
});
const { newDeployment, isPublicFunction } = await vite.ssrLoadModule("/test-harness/deployment.ts");
const { convexToJson, jsonToConvex } = await import("convex/values");

const realNow = Date.now.bind(Date);
let lastNow = 0;
Date.now = () => {
  lastNow = Math.max(realNow(), lastNow + 1);
  return lastNow;
};

const deployments = new Map();
let created = 0;

// Convex's backend writes every number as a float ("1.0", never "1"); so does the harness,
// so clients are tested against the real format.
function toJsonText(value) {
  if (typeof value === "number") {
    return Number.isInteger(value) && Math.abs(value) < 1e21 ? `${value}.0` : JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(toJsonText).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const fields = Object.entries(value).filter(([, field]) => field !== undefined);
    return `{${fields.map(([key, field]) => `${JSON.stringify(key)}:${toJsonText(field)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

function send(response, status, body) {
  const text = toJsonText(body);
  response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  response.end(text);
}

async function readJson(request) {
  const parts = [];
  let size = 0;
  for await (const part of request) {
    size += part.length;
    if (size > MAX_BODY_BYTES) throw new Error("request body too large");
    parts.push(part);
  }
  return parts.length ? JSON.parse(Buffer.concat(parts).toString("utf8")) : {};
}

function isConvexError(error) {
  return typeof error === "object" && error !== null && Symbol.for("ConvexError") in error;
}

/** Run a public function (counted); {value} or {errorMessage, errorData?}, both in Convex's JSON. */
async function runFunction(deployment, kind, path, args) {
  deployment.calls.set(path, (deployment.calls.get(path) ?? 0) + 1);
  try {
    const value = await deployment.call(kind, path, jsonToConvex(args));
    await deployment.settle();
    if (kind !== "query") deployment.sync?.changed();
    return { value: convexToJson(value ?? null) };
  } catch (error) {
    const failed = { errorMessage: String(error?.message ?? error) };
    if (isConvexError(error)) failed.errorData = convexToJson(error.data ?? null);
    return failed;
  }
}

async function callFunction(response, deployment, kind, body) {
  const { path, args = {}, format } = body;
  if (typeof path !== "string" || (format !== undefined && format !== "convex_encoded_json" && format !== "json")) {
    return send(response, 400, { code: "BadRequest", message: "Expected a path and the convex_encoded_json format." });
  }
  if (!(await isPublicFunction(kind, path))) {
    return send(response, 404, { code: "FunctionNotFound", message: `Could not find public ${kind} ${path}.` });
  }
  const result = await runFunction(deployment, kind, path, args);
  if ("value" in result) return send(response, 200, { status: "success", value: result.value, logLines: [] });
  send(response, UDF_FAILED, { status: "error", ...result, logLines: [] });
}

/** A public function for the sync stand-in, or the error a deployment reports for a missing one. */
async function runPublic(deployment, kind, path, args) {
  if (!(await isPublicFunction(kind, path))) return { errorMessage: `Could not find public ${kind} ${path}.` };
  return await runFunction(deployment, kind, path, args);
}

/** A port of the deployment's own, serving the HTTP API at /api/... and the sync stand-in at /api/sync. */
async function listenForSync(deployment) {
  deployment.sync = syncEndpoint({
    run: (path, args) => runPublic(deployment, "query", path, args),
    call: (kind, path, args) => runPublic(deployment, kind, path, args),
  });
  const own = createHttpServer(async (request, response) => {
    try {
      const parts = new URL(request.url ?? "/", "http://127.0.0.1").pathname.split("/").filter(Boolean);
      if (request.method === "POST" && parts[0] === "api" && ["query", "mutation", "action"].includes(parts[1])) {
        return await callFunction(response, deployment, parts[1], await readJson(request));
      }
      send(response, 404, { code: "NotFound", message: "No such route." });
    } catch (error) {
      send(response, 400, { code: "BadRequest", message: String(error?.message ?? error) });
    }
  });
  own.on("upgrade", (request, socket, head) => {
    if (new URL(request.url ?? "/", "http://127.0.0.1").pathname === "/api/sync") deployment.sync.upgrade(request, socket, head);
    else socket.destroy();
  });
  await new Promise((resolve) => own.listen(0, "127.0.0.1", resolve));
  deployment.server = own;
  return own.address().port;
}

function closeDeployment(deployment) {
  deployment.sync?.close();
  deployment.server?.close();
  deployment.server?.closeAllConnections();
}

const server = createHttpServer(async (request, response) => {
  try {
    const url = new URL(request.url ?? "/", "http://127.0.0.1");
    const parts = url.pathname.split("/").filter(Boolean);
    if (request.method === "POST" && url.pathname === "/_harness/deployments") {
      const id = `d${++created}`;
      const { transactionLimits, sync } = await readJson(request);
      const deployment = newDeployment(transactionLimits);
      deployments.set(id, deployment);
      return send(response, 200, sync ? { id, port: await listenForSync(deployment) } : { id });
    }
    if (request.method === "GET" && parts[0] === "_harness" && parts.length === 4 && parts[3] === "calls") {
      const counted = deployments.get(parts[2]);
      if (counted === undefined) return send(response, 404, { code: "NotFound", message: "No such deployment." });
      return send(response, 200, Object.fromEntries(counted.calls));
    }
    if (request.method === "GET" && parts[0] === "_harness" && parts.length === 4 && parts[3] === "writes") {
      const counted = deployments.get(parts[2]);
      if (counted === undefined) return send(response, 404, { code: "NotFound", message: "No such deployment." });
      return send(response, 200, { documents: counted.counters.documentsWritten });
    }
    if (request.method === "DELETE" && parts[0] === "_harness" && parts[1] === "deployments" && parts.length === 3) {
      if (deployments.has(parts[2])) closeDeployment(deployments.get(parts[2]));
      deployments.delete(parts[2]);
      return send(response, 200, {});
    }
    const deployment = deployments.get(parts[0]);
    const kind = parts[2];
    if (request.method === "POST" && deployment && parts[1] === "api" && ["query", "mutation", "action"].includes(kind)) {
      return await callFunction(response, deployment, kind, await readJson(request));
    }
    send(response, 404, { code: "NotFound", message: "No such route." });
  } catch (error) {
    send(response, 400, { code: "BadRequest", message: String(error?.message ?? error) });
  }
});

let closing = false;
async function shutdown() {
  if (closing) return;
  closing = true;
  for (const deployment of deployments.values()) closeDeployment(deployment);
  server.close();
  server.closeAllConnections();
  await vite.close();
  process.exit(0);
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
process.stdin.on("end", shutdown);
process.stdin.on("close", shutdown);
process.stdin.resume();

server.listen(Number(process.env.HARNESS_PORT ?? 0), "127.0.0.1", () => {
  const { port } = server.address();
  process.stdout.write(`convex harness listening on http://127.0.0.1:${port}\n`);
});
