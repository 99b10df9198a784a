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
import { getDocumentSize, type Value } from "convex/values";
import { BYTES_BUDGET } from "./cascade";
import { MAX_LISTED_PARTS, MAX_REPLY_CHUNKS } from "./limits";
import { cutPage, textSize } from "./paging";
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

/**
 * A reply ended: merge its text parts' chunks into them and delete the chunks
 * later. Its parts are read in batches of at most BYTES_BUDGET (a tool's output
 * may hold 64 KiB, a merged text more); a full batch schedules the next one
 * (`parts.mergeRest`), after the part it ended with.
 */
export async function mergeReply(ctx: MutationCtx, messageId: string, afterPosition = -1): Promise<void> {
  async function* parts() {
    const found = ctx.db
      .query("messageParts")
      .withIndex("by_messageId_and_position", (q) => q.eq("messageId", messageId).gt("position", afterPosition));
    for await (const part of found) yield { part, merged: part.unmerged ? await partText(ctx, part) : null };
  }
  // Merging reads a text (its chunks) and writes it again.
  const size = ({ part, merged }: { part: Doc<"messageParts">; merged: { text: string } | null }) =>
    getDocumentSize(part as unknown as Record<string, Value>) + 2 * textSize(merged?.text);
  const { items, hasMore } = await cutPage(parts(), MAX_LISTED_PARTS, size, BYTES_BUDGET);
  for (const { part, merged } of items) {
    if (merged === null) continue;
    const stored = await replaceText(ctx, part, merged.text);
    await ctx.db.patch(part._id, {
      text: stored.text,
      textSegments: stored.segments,
      sequence: merged.sequence,
      unmerged: undefined,
    });
  }
  if (hasMore) {
    const last = items[items.length - 1].part.position;
    await ctx.scheduler.runAfter(0, internal.parts.mergeRest, { messageId, afterPosition: last });
  } else {
    await ctx.scheduler.runAfter(CHUNK_GRACE_MS, internal.cleanup.dropChunks, { messageId });
  }
}
