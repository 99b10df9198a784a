/**
 * Long text kept across documents: a reply may hold a million characters (up to
 * 4 MB of UTF-8) but one Convex document at most 1 MiB.
 *
 * A message whose content is longer than INLINE_UNITS keeps `content: ""` and
 * `contentSegments: n`; its text is in `n` `textSegments` documents of at most
 * SEGMENT_UNITS UTF-16 code units each (at most 3 bytes of UTF-8 per unit, so
 * under 600 KB), never splitting a surrogate pair. A text part does the same
 * (`text: ""`, `textSegments: n`, segments under its part ID). Readers join them
 * again: `readSegments` returns a bounded run of them per call.
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

/** At most how many bytes of UTF-8 `count` segments hold (a code unit is at most 3 bytes). */
export function segmentBytes(count: number | undefined): number {
  return (count ?? 0) * SEGMENT_UNITS * 3;
}

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

/** Whose text a segment holds: a message's content (`partId` "") or one of its parts. */
export type TextOwner = { messageId: string; chatSessionId: string; partId?: string };

/** The fields that give a stored message `content` as its text (its old segments are deleted). */
export async function replaceContent(
  ctx: MutationCtx,
  message: Doc<"chatMessages">,
  content: string,
): Promise<{ content: string; contentSegments: number | undefined }> {
  const { text, segments: count } = await replaceText(ctx, message, content);
  return { content: text, contentSegments: count };
}

/** The fields of a new message document holding `content`: inline when short, else segments (written here). */
export async function insertContent(
  ctx: MutationCtx,
  messageId: string,
  chatSessionId: string,
  content: string,
): Promise<{ content: string; contentSegments?: number }> {
  const { text, segments: count } = await insertText(ctx, { messageId, chatSessionId }, content);
  return count === undefined ? { content: text } : { content: text, contentSegments: count };
}

/** `text` stored for `owner` in place of its old segments: inline if short, else segments. */
export async function replaceText(
  ctx: MutationCtx,
  owner: TextOwner,
  text: string,
): Promise<{ text: string; segments: number | undefined }> {
  await deleteSegments(ctx, owner);
  return await insertText(ctx, owner, text);
}

/**
 * `owner`'s text (inline `text`, or `segments` of them) with `added` after it:
 * the new fields. Inline text moves to segments once too long; segmented text
 * rewrites only its last segment and adds the ones `added` fills.
 */
export async function appendToText(
  ctx: MutationCtx,
  owner: TextOwner,
  current: { text: string; segments: number | undefined },
  added: string,
): Promise<{ text: string; segments: number | undefined }> {
  if (current.segments === undefined) return await insertText(ctx, owner, current.text + added);
  const { messageId, chatSessionId, partId = "" } = owner;
  const lastIndex = current.segments - 1;
  const last = await ctx.db
    .query("textSegments")
    .withIndex("by_messageId_and_partId_and_index", (q) =>
      q.eq("messageId", messageId).eq("partId", partId).eq("index", lastIndex),
    )
    .unique();
  const [first, ...rest] = segments((last?.text ?? "") + added);
  if (last === null) await ctx.db.insert("textSegments", { messageId, chatSessionId, partId, index: lastIndex, text: first });
  else await ctx.db.patch(last._id, { text: first });
  for (const [n, piece] of rest.entries()) {
    await ctx.db.insert("textSegments", { messageId, chatSessionId, partId, index: lastIndex + 1 + n, text: piece });
  }
  return { text: "", segments: current.segments + rest.length };
}

async function insertText(
  ctx: MutationCtx,
  owner: TextOwner,
  text: string,
): Promise<{ text: string; segments: number | undefined }> {
  if (text.length <= INLINE_UNITS) return { text, segments: undefined };
  const pieces = segments(text);
  const { messageId, chatSessionId, partId = "" } = owner;
  for (const [index, piece] of pieces.entries()) {
    await ctx.db.insert("textSegments", { messageId, chatSessionId, partId, index, text: piece });
  }
  return { text: "", segments: pieces.length };
}

async function deleteSegments(ctx: MutationCtx, owner: TextOwner): Promise<void> {
  const stored = await ctx.db
    .query("textSegments")
    .withIndex("by_messageId_and_partId_and_index", (q) =>
      q.eq("messageId", owner.messageId).eq("partId", owner.partId ?? ""),
    )
    .take(MAX_SEGMENTS);
  for (const segment of stored) await ctx.db.delete(segment._id);
}

/** Up to SEGMENTS_PER_READ segments of a message's (or part's) text from `fromIndex` on, in order. */
export async function readSegments(
  ctx: QueryCtx,
  messageId: string,
  fromIndex: number,
  partId: string = "",
): Promise<string[]> {
  const found = await ctx.db
    .query("textSegments")
    .withIndex("by_messageId_and_partId_and_index", (q) =>
      q.eq("messageId", messageId).eq("partId", partId).gte("index", fromIndex),
    )
    .take(SEGMENTS_PER_READ);
  return found.map((segment) => segment.text);
}
