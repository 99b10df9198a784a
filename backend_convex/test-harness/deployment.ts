/**
 * One in-memory "deployment" of the functions in ../convex, run by convex-test,
 * and the rules the real HTTP API applies before calling a function: only
 * public functions, and only of the kind the route names.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { convexTest } from "convex-test";
import { TransactionMetricsTracker } from "convex-test/dist/transactionMetrics.js";
import { makeFunctionReference } from "convex/server";
import schema from "../convex/schema";

/** Convex's limit on one document (docs.convex.dev/production/state/limits). */
export const MAX_DOCUMENT_BYTES = 1 << 20;

/** The counters of the deployment whose call is running (writes are counted per deployment). */
const running = new AsyncLocalStorage<{ documentsWritten: number }>();

// convex-test enforces the per-transaction totals but not the size of one document;
// a real deployment refuses a document over 1 MiB, so the harness does too.
const trackWrite = TransactionMetricsTracker.prototype.trackWrite;
TransactionMetricsTracker.prototype.trackWrite = function (this: TransactionMetricsTracker, size: number) {
  if (size > MAX_DOCUMENT_BYTES) {
    throw new Error(
      `Document is too large (${size} bytes > maximum size ${MAX_DOCUMENT_BYTES} bytes). ` +
        "This is a Convex limit: https://docs.convex.dev/production/state/limits",
    );
  }
  const counters = running.getStore();
  if (counters !== undefined) counters.documentsWritten++;
  trackWrite.call(this, size);
};

export type Kind = "query" | "mutation" | "action";

const modules = import.meta.glob("../convex/**/*.*s");

type Registered = {
  isPublic?: boolean;
  isQuery?: boolean;
  isMutation?: boolean;
  isAction?: boolean;
};

/** Whether `path` ("module:export", as a client sends it) names a public function of `kind`. */
export async function isPublicFunction(kind: Kind, path: string): Promise<boolean> {
  const [modulePath, exportName = "default"] = path.split(":");
  const loader = modules[`../convex/${modulePath.replace(/\.js$/, "")}.ts`];
  if (loader === undefined || modulePath.startsWith("_generated")) return false;
  const module = (await loader()) as Record<string, Registered | undefined>;
  const fn = module[exportName];
  if (fn === undefined || fn.isPublic !== true) return false;
  return kind === "query" ? fn.isQuery === true : kind === "mutation" ? fn.isMutation === true : fn.isAction === true;
}

/** A fresh, empty deployment; `transactionLimits` lowers some of Convex's limits for it. */
export function newDeployment(transactionLimits?: Record<string, number>) {
  // Enforce Convex's per-transaction limits, so unbounded reads fail here as they would there.
  const t = convexTest({ schema, modules, transactionLimits: transactionLimits ?? true });
  const counters = { documentsWritten: 0 };
  return {
    /** How many times each function was called through the API (for cost benchmarks). */
    calls: new Map<string, number>(),
    /** Documents inserted, patched, replaced or deleted so far (scheduled functions included). */
    counters,
    call(kind: Kind, path: string, args: Record<string, unknown>): Promise<unknown> {
      // The function's validators check `args`, as on a real deployment.
      return running.run(counters, () => {
        if (kind === "query") return t.query(makeFunctionReference<"query">(path), args as never);
        if (kind === "mutation") return t.mutation(makeFunctionReference<"mutation">(path), args as never);
        return t.action(makeFunctionReference<"action">(path), args as never);
      });
    },
    /** Wait for scheduled functions that are already due (background deletions). */
    settle(): Promise<void> {
      return running.run(counters, () => t.finishInProgressScheduledFunctions());
    },
  };
}
