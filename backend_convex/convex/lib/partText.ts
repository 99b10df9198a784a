/**
 * A text part's text while its reply streams: what is merged into the part, then
 * its chunks. Each text delta only inserts its chunk (one document write); the
 * part is written once more when the reply ends (`mergeReply`), and the chunks are
 * deleted a grace period later (`cleanup.dropChunks`), so readers resuming from a
 * sequence of the reply still get them, and the reply is not stored twice after.
 */
import { internal } from "../_generated/api";
import type { Doc } from "../_generated/dataModel";
import type { MutationCtx, QueryCtx } from "../_generated/server";
import { MAX_LISTED_PARTS, MAX_REPLY_CHUNKS } from "./limits";

/** How long a finished reply's chunks stay readable for streams resuming inside it. */
export const CHUNK_GRACE_MS = 60_000;

async function chunksOf(ctx: QueryCtx, part: Doc<"messageParts">): Promise<Doc<"chatChunks">[]> {
  return await ctx.db
    .query("chatChunks")
    .withIndex("by_messageId_and_partId_and_offset", (q) =>
      q.eq("messageId", part.messageId).eq("partId", part.partId),
    )
    .take(MAX_REPLY_CHUNKS);
}

/** Chunks laid over `text` at their offsets (a chunk may repeat text already there). */
function laid(text: string, chunks: Doc<"chatChunks">[]): string {
  let whole = text;
  for (const chunk of chunks) {
    const offset = chunk.offset ?? whole.length;
    if (offset <= whole.length && offset + chunk.chunk.length > whole.length) {
      whole += chunk.chunk.slice(whole.length - offset);
    }
  }
  return whole;
}

/** The part's whole text (its own, then its chunks not merged yet) and the sequence of its last change. */
export async function partText(
  ctx: QueryCtx,
  part: Doc<"messageParts">,
): Promise<{ text: string; sequence: number }> {
  if (!part.unmerged) return { text: part.text, sequence: part.sequence };
  const chunks = await chunksOf(ctx, part);
  const sequence = Math.max(part.sequence, ...chunks.map((chunk) => chunk.sequence));
  return { text: laid(part.text, chunks), sequence };
}

/** How many characters the part holds: the next delta starts there. */
export async function partLength(ctx: QueryCtx, part: Doc<"messageParts">): Promise<number> {
  if (!part.unmerged) return part.text.length;
  const last = await ctx.db
    .query("chatChunks")
    .withIndex("by_messageId_and_partId_and_offset", (q) =>
      q.eq("messageId", part.messageId).eq("partId", part.partId),
    )
    .order("desc")
    .first();
  return Math.max(part.text.length, last === null ? 0 : (last.offset ?? 0) + last.chunk.length);
}

/** A reply ended: merge its text parts' chunks into them and delete the chunks later. */
export async function mergeReply(ctx: MutationCtx, messageId: string): Promise<void> {
  const parts = await ctx.db
    .query("messageParts")
    .withIndex("by_messageId_and_position", (q) => q.eq("messageId", messageId))
    .take(MAX_LISTED_PARTS);
  for (const part of parts) {
    if (part.unmerged) await ctx.db.patch(part._id, { ...(await partText(ctx, part)), unmerged: undefined });
  }
  await ctx.scheduler.runAfter(CHUNK_GRACE_MS, internal.cleanup.dropChunks, { messageId });
}
