/** Background deletion: what a deleted machine or worker left behind (lib/cascade.ts), and a
 * finished reply's chunks (lib/partText.ts). */
import { internal } from "./_generated/api";
import { internalMutation } from "./_generated/server";
import { v } from "convex/values";
import { BATCH_BUDGET, budgetOf, deleteEach, purge as purgeBatch, purgeTarget } from "./lib/cascade";

/** Delete one batch below `target`, and schedule the next until nothing is left. */
export const purge = internalMutation({
  args: { target: purgeTarget },
  returns: v.null(),
  handler: async (ctx, { target }) => {
    if (!(await purgeBatch(ctx, target, BATCH_BUDGET))) {
      await ctx.scheduler.runAfter(0, internal.cleanup.purge, { target });
    }
    return null;
  },
});

/** Delete the chunks of a reply that ended (its text is in its message and parts now). */
export const dropChunks = internalMutation({
  args: { messageId: v.string() },
  returns: v.null(),
  handler: async (ctx, { messageId }) => {
    const page = (n: number) =>
      ctx.db
        .query("chatChunks")
        .withIndex("by_messageId_and_sequence", (q) => q.eq("messageId", messageId))
        .take(n);
    if (!(await deleteEach(ctx, page, budgetOf(BATCH_BUDGET)))) {
      await ctx.scheduler.runAfter(0, internal.cleanup.dropChunks, { messageId });
    }
    return null;
  },
});
