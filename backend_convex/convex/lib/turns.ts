/**
 * The open turns: one small document per unfinished message (queued, claimed or
 * streaming), without its text, so the notifier's list of open turns never reads
 * a message's content however long it is (a message document may hold 1 MiB).
 *
 * Every write that creates a message, changes its status or deletes it calls
 * `trackTurn` or `forgetTurn` here, and a session's purge deletes its turns.
 */
import type { Doc } from "../_generated/dataModel";
import type { MutationCtx } from "../_generated/server";

/** The fields of a message its open turn keeps. */
export type TurnFields = Pick<
  Doc<"chatMessages">,
  "messageId" | "chatSessionId" | "machineId" | "role" | "status" | "timestamp" | "replyTo"
>;

const OPEN = new Set<string>(["pending", "processing", "streaming"]);

async function turnOf(ctx: MutationCtx, messageId: string) {
  return await ctx.db
    .query("openTurns")
    .withIndex("by_messageId", (q) => q.eq("messageId", messageId))
    .unique();
}

/** Keep the message's open turn as it is now: written while unfinished, gone once finished. */
export async function trackTurn(ctx: MutationCtx, message: TurnFields): Promise<void> {
  const { messageId, chatSessionId, machineId, role, status, timestamp, replyTo } = message;
  const found = await turnOf(ctx, messageId);
  if (!OPEN.has(status)) {
    if (found !== null) await ctx.db.delete(found._id);
    return;
  }
  const fields = { messageId, chatSessionId, machineId, role, status, timestamp, replyTo };
  if (found === null) await ctx.db.insert("openTurns", fields);
  else await ctx.db.replace(found._id, fields);
}

/** Forget the open turn of a message that is deleted. */
export async function forgetTurn(ctx: MutationCtx, messageId: string): Promise<void> {
  const found = await turnOf(ctx, messageId);
  if (found !== null) await ctx.db.delete(found._id);
}
