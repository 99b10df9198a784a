/**
 * The inbox's finished replies (orchestrator/domain/notifications.py FinishedReply): a small
 * row per reply that ended, written when it ends, so the inbox never reads a reply's text.
 */
import type { MutationCtx } from "../_generated/server";
import type { MessageStatus } from "./validators";

/** Endings listed in the inbox (INBOX_ENDINGS): a reply the user stopped is not news to them. */
export const INBOX_ENDINGS: ReadonlySet<string> = new Set(["completed", "failed", "interrupted"]);
/** The preview's length in characters (MAX_LINE). */
export const MAX_LINE = 80;
/** Characters of the text looked at for the preview (enough for MAX_LINE words). */
const PREVIEW_SOURCE = 4 * MAX_LINE;

/** One line of at most MAX_LINE characters (short_line in Python). */
export function shortLine(text: string): string {
  const line = text.slice(0, PREVIEW_SOURCE).split(/\s+/).filter(Boolean).join(" ");
  const chars = Array.from(line);
  return chars.length <= MAX_LINE ? line : chars.slice(0, MAX_LINE - 1).join("").trimEnd() + "…";
}

/** Keep the finished row of a reply that ended with one of INBOX_ENDINGS (a reply ends once). */
export async function recordFinished(
  ctx: MutationCtx,
  reply: { messageId: string; userId: string; chatSessionId: string },
  status: MessageStatus,
  content: string,
  error: string | undefined,
  finishedAt: number,
) {
  if (!INBOX_ENDINGS.has(status)) return;
  const preview = shortLine(content || error || "");
  await ctx.db.insert("finishedReplies", { ...reply, status, preview, finishedAt });
}

/** Finished replies listed at once (MAX_FINISHED). */
export const MAX_FINISHED = 50;
