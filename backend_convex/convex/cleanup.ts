/** Background deletion of what a deleted machine or worker left behind (see lib/cascade.ts). */
import { internal } from "./_generated/api";
import { internalMutation } from "./_generated/server";
import { v } from "convex/values";
import { BATCH_BUDGET, purge as purgeBatch, purgeTarget } from "./lib/cascade";

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
