/**
 * Who is calling: the web server (a deployment secret) or a machine (its token).
 *
 * Both checks run first in every public function, before it reads or writes
 * anything else.
 *
 * **The web server** passes `serverSecret`, which must equal the deployment's
 * `ORCHESTRATOR_SERVER_SECRET` environment variable (set with `npx convex env
 * set`). Without the variable every server call is refused: a deployment is
 * closed until it is configured.
 *
 * **A machine** passes its token's two halves. The secret is 32 random bytes
 * from a CSPRNG (256 bits, generated in an action, see machines.ts), and the
 * deployment stores only its SHA-256. A slow hash (argon2, scrypt) exists to
 * make guessing a *low-entropy* secret such as a password expensive after a
 * database leak; against a uniformly random 256-bit secret there is nothing to
 * guess — 2^256 SHA-256 evaluations are out of reach whatever one hash costs —
 * so a fast hash is as safe, and it keeps every machine call (heartbeats,
 * chunks) cheap inside a Convex query or mutation, where argon2 is not
 * available. Digests are compared in constant time.
 */
import type { QueryCtx } from "../_generated/server";
import type { Doc } from "../_generated/dataModel";
import { fail, INVALID_TOKEN } from "./errors";

const SERVER_SECRET_ENV = "ORCHESTRATOR_SERVER_SECRET";
/** The shortest deployment secret accepted: 32 characters (e.g. `openssl rand -hex 32` gives 64). */
export const MIN_SERVER_SECRET_LENGTH = 32;

/** Whether two strings are equal, in time that depends only on their lengths. */
export function constantTimeEqual(a: string, b: string): boolean {
  let difference = a.length ^ b.length;
  const length = Math.max(a.length, b.length);
  for (let i = 0; i < length; i++) {
    difference |= (a.charCodeAt(i) | 0) ^ (b.charCodeAt(i) | 0);
  }
  return difference === 0;
}

/** Refuse the call unless it carries the deployment's server secret. */
export function requireServer(serverSecret: string): void {
  const expected = process.env[SERVER_SECRET_ENV];
  if (!expected || expected.length < MIN_SERVER_SECRET_LENGTH) {
    fail(
      "AuthenticationFailed",
      `The Convex deployment has no ${SERVER_SECRET_ENV} of at least ${MIN_SERVER_SECRET_LENGTH}` +
        ` characters. Set it with: npx convex env set ${SERVER_SECRET_ENV} <secret>.`,
    );
  }
  if (!constantTimeEqual(serverSecret, expected)) {
    fail(
      "AuthenticationFailed",
      `The server secret is wrong. Give the web server the ${SERVER_SECRET_ENV} set on the Convex deployment.`,
    );
  }
}

/** Hex SHA-256 of a machine secret: what the machines table stores. */
export async function hashSecret(secret: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(secret));
  return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** The calling machine's row, or "Invalid token" alike for an unknown machine and a wrong secret. */
export async function requireMachine(
  ctx: QueryCtx,
  token: { machineId: string; machineSecret: string },
): Promise<Doc<"machines">> {
  const hashed = await hashSecret(token.machineSecret);
  const machine = await ctx.db
    .query("machines")
    .withIndex("by_machineId", (q) => q.eq("machineId", token.machineId))
    .unique();
  // Hash and compare even for an unknown machine, so timing does not tell them apart.
  const stored = machine?.secretHash ?? "0".repeat(hashed.length);
  if (!constantTimeEqual(hashed, stored) || machine === null) fail("AuthenticationFailed", INVALID_TOKEN);
  return machine;
}
