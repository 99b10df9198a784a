/**
 * Long text kept across documents: a reply may hold a million characters (up to
 * 4 MB of UTF-8) but one Convex document at most 1 MiB.
 *
 * A message whose content is longer than INLINE_UNITS keeps `content: ""` and
 * `contentSegments: n`; its text is in `n` `textSegments` documents of at most
 * SEGMENT_UNITS UTF-16 code units each (at most 3 bytes of UTF-8 per unit, so
 * under 600 KB), never splitting a surrogate pair. Readers join them again:
 * `readSegments` returns a bounded run of them per call.
 */
import type { Doc } from "../_generated/dataModel";
import type { MutationCtx, QueryCtx } from "../_generated/server";

/** UTF-16 code units of one segment (under 600 KB of UTF-8). */
export const SEGMENT_UNITS = 200_000;
/** Content up to this many code units stays in its message document. */
export const INLINE_UNITS = 100_000;
/** Segments of the longest reply (MAX_REPLY_LENGTH code points, two units each at most). */
export const MAX_SEGMENTS = 16;
/** Segments returned by one read (under 5 MB, well within a call's 16 MiB). */
export const SEGMENTS_PER_READ = 8;

/** `text` cut into pieces of at most `size` code units, never inside a surrogate pair. */
export function segments(text: string, size: number = SEGMENT_UNITS): string[] {
  const pieces: string[] = [];
  let start = 0;
  while (start < text.length) {
    let end = Math.min(start + size, text.length);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end--; // keep the pair whole
    pieces.push(text.slice(start, end));
    start = end;
  }
  return pieces;
}

/** The fields that give a stored message `content` as its text (its old segments are deleted). */
export async function replaceContent(
  ctx: MutationCtx,
  message: Doc<"chatMessages">,
  content: string,
): Promise<{ content: string; contentSegments: number | undefined }> {
  await deleteSegments(ctx, message.messageId);
  const fields = await insertContent(ctx, message.messageId, message.chatSessionId, content);
  return { content: fields.content, contentSegments: fields.contentSegments };
}

/** The fields of a message document holding `content`: inline when short, else segments (written here). */
export async function insertContent(
  ctx: MutationCtx,
  messageId: string,
  chatSessionId: string,
  content: string,
): Promise<{ content: string; contentSegments?: number }> {
  if (content.length <= INLINE_UNITS) return { content };
  const pieces = segments(content);
  for (const [index, text] of pieces.entries()) {
    await ctx.db.insert("textSegments", { messageId, chatSessionId, index, text });
  }
  return { content: "", contentSegments: pieces.length };
}

async function deleteSegments(ctx: MutationCtx, messageId: string): Promise<void> {
  const stored = await ctx.db
    .query("textSegments")
    .withIndex("by_messageId_and_index", (q) => q.eq("messageId", messageId))
    .take(MAX_SEGMENTS);
  for (const segment of stored) await ctx.db.delete(segment._id);
}

/** Up to SEGMENTS_PER_READ segments of a message's text from `fromIndex` on, in order. */
export async function readSegments(ctx: QueryCtx, messageId: string, fromIndex: number): Promise<string[]> {
  const found = await ctx.db
    .query("textSegments")
    .withIndex("by_messageId_and_index", (q) => q.eq("messageId", messageId).gte("index", fromIndex))
    .take(SEGMENTS_PER_READ);
  return found.map((segment) => segment.text);
}
