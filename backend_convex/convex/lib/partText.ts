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
import { codePoints, fromCodePoint } from "./rules";
import { readSegments, replaceText } from "./text";

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

/** Chunks laid over `text` at their offsets, in characters (a chunk may repeat text already there). */
function laid(text: string, chunks: Doc<"chatChunks">[]): string {
  const pieces = [text];
  let length = codePoints(text);
  for (const chunk of chunks) {
    const offset = chunk.offset ?? length;
    const end = offset + codePoints(chunk.chunk);
    if (offset <= length && end > length) {
      pieces.push(fromCodePoint(chunk.chunk, length - offset));
      length = end;
    }
  }
  return pieces.join("");
}

/** The text stored in the part itself, its segments joined if it has any. */
async function ownText(ctx: QueryCtx, part: Doc<"messageParts">): Promise<string> {
  if (!part.textSegments) return part.text;
  const pieces: string[] = [];
  while (pieces.length < part.textSegments) {
    const found = await readSegments(ctx, part.messageId, pieces.length, part.partId);
    if (found.length === 0) break;
    pieces.push(...found);
  }
  return pieces.join("");
}

/** The part's whole text (its own, then its chunks not merged yet) and the sequence of its last change. */
export async function partText(
  ctx: QueryCtx,
  part: Doc<"messageParts">,
): Promise<{ text: string; sequence: number }> {
  const own = await ownText(ctx, part);
  if (!part.unmerged) return { text: own, sequence: part.sequence };
  const chunks = await chunksOf(ctx, part);
  const sequence = Math.max(part.sequence, ...chunks.map((chunk) => chunk.sequence));
  return { text: laid(own, chunks), sequence };
}

/** How many characters (code points) the part holds: the next delta starts there. */
export async function partLength(ctx: QueryCtx, part: Doc<"messageParts">): Promise<number> {
  const own = codePoints(part.textSegments ? await ownText(ctx, part) : part.text);
  if (!part.unmerged) return own;
  const last = await ctx.db
    .query("chatChunks")
    .withIndex("by_messageId_and_partId_and_offset", (q) =>
      q.eq("messageId", part.messageId).eq("partId", part.partId),
    )
    .order("desc")
    .first();
  return Math.max(own, last === null ? 0 : (last.offset ?? 0) + codePoints(last.chunk));
}

/** A reply ended: merge its text parts' chunks into them and delete the chunks later. */
export async function mergeReply(ctx: MutationCtx, messageId: string): Promise<void> {
  const parts = await ctx.db
    .query("messageParts")
    .withIndex("by_messageId_and_position", (q) => q.eq("messageId", messageId))
    .take(MAX_LISTED_PARTS);
  for (const part of parts) {
    if (!part.unmerged) continue;
    const { text, sequence } = await partText(ctx, part);
    const stored = await replaceText(ctx, part, text);
    await ctx.db.patch(part._id, { text: stored.text, textSegments: stored.segments, sequence, unmerged: undefined });
  }
  await ctx.scheduler.runAfter(CHUNK_GRACE_MS, internal.cleanup.dropChunks, { messageId });
}
