/**
 * When a reply ends, what it asked can no longer be answered: its pending and
 * answered permission requests and questions become expired.
 *
 * A request can be large (an edit's diff, a question's choices), so the rows are
 * changed in batches bounded by the cascade's budget (cascade.ts); what one
 * mutation cannot read is carried on by `chatMachine:expireRest`.
 */
import { internal } from "../_generated/api";
import type { MutationCtx } from "../_generated/server";
import { BATCH_BUDGET, budgetOf, eachRow, INLINE_BUDGET, type Budget } from "./cascade";

const WAITING = ["pending", "answered"] as const;

async function expireSome(ctx: MutationCtx, messageId: string, budget: Budget): Promise<boolean> {
  for (const status of WAITING) {
    const permissions = (n: number) =>
      ctx.db
        .query("permissionRequests")
        .withIndex("by_messageId_and_status", (q) => q.eq("messageId", messageId).eq("status", status))
        .take(n);
    const questions = (n: number) =>
      ctx.db
        .query("questionRequests")
        .withIndex("by_messageId_and_status", (q) => q.eq("messageId", messageId).eq("status", status))
        .take(n);
    if (!(await eachRow(permissions, budget, (row) => ctx.db.patch(row._id, { status: "expired" })))) return false;
    if (!(await eachRow(questions, budget, (row) => ctx.db.patch(row._id, { status: "expired" })))) return false;
  }
  return true;
}

/** Expire what the ended reply `messageId` asked; in the ending mutation (`inline`) or a later batch. */
export async function expireAsked(ctx: MutationCtx, messageId: string, inline = true): Promise<void> {
  if (!(await expireSome(ctx, messageId, budgetOf(inline ? INLINE_BUDGET : BATCH_BUDGET)))) {
    await ctx.scheduler.runAfter(0, internal.chatMachine.expireRest, { messageId });
  }
}
