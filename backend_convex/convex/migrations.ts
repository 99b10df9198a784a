/**
 * One-off steps an upgraded deployment runs once (backend_convex/README.md says
 * how). Each step reads one page, bounded by count and by size, and schedules
 * the next, so a step never nears Convex's limits whatever the data; running
 * one again does no harm.
 */
import { internal } from "./_generated/api";
import { internalMutation } from "./_generated/server";
import { getDocumentSize, v, type Value } from "convex/values";
import { cutPage, MAX_PAGE, PAGE_BYTES } from "./lib/paging";
import { trackTurn } from "./lib/turns";

/**
 * Give every unfinished message its open turn (lib/turns.ts), and drop the turn
 * of a finished one: messages left unfinished when the `openTurns` table was
 * deployed have none until they finish. Reads the messages created after
 * `after` (their `_creationTime`) a page at a time and schedules itself for the
 * next page; returns how many it checked and whether it was the last page.
 */
export const backfillOpenTurns = internalMutation({
  args: { after: v.optional(v.number()) },
  returns: v.object({ checked: v.number(), done: v.boolean() }),
  handler: async (ctx, { after }) => {
    const messages = ctx.db
      .query("chatMessages")
      .withIndex("by_creation_time", (q) => (after === undefined ? q : q.gt("_creationTime", after)));
    const size = (m: object) => getDocumentSize(m as Record<string, Value>);
    const { items, hasMore } = await cutPage(messages, MAX_PAGE, size, PAGE_BYTES);
    for (const message of items) await trackTurn(ctx, message);
    if (hasMore) {
      const last = items[items.length - 1]._creationTime;
      await ctx.scheduler.runAfter(0, internal.migrations.backfillOpenTurns, { after: last });
    }
    return { checked: items.length, done: !hasMore };
  },
});
