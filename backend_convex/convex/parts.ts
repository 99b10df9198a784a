/**
 * The typed parts of replies: the machine stores them, the owner lists them.
 *
 * The rules mirror orchestrator/domain/parts.py (the contract suite holds the
 * two to the same results): a part is keyed by its reply and the agent's part
 * ID; storing it whole never shortens text already streamed into it; a text
 * delta at a character offset past the stored end is refused (`TextGap`), text
 * already stored is skipped, so a retried write never duplicates text. The
 * machine bounds a part's fields before sending it (tool output, opaque JSON);
 * here the sizes are only checked. A delta of a `text` part writes its chat
 * chunk in the same mutation.
 */
import type { Doc } from "./_generated/dataModel";
import { internalMutation, mutation, type MutationCtx, type QueryCtx } from "./_generated/server";
import { getDocumentSize, v, type Value } from "convex/values";
import { ownerOfSession, serverQuery } from "./lib/functions";
import { machineMessage, ownedSession, reachable } from "./lib/access";
import { requireMachine } from "./lib/auth";
import { sessionChunksAfter, ensureStreaming, insertChunk, lastSequence } from "./lib/chat";
import { mergeReply, partLength, partText } from "./lib/partText";
import { appendToText, readSegments, replaceText } from "./lib/text";
import { fail } from "./lib/errors";
import { CHUNK_PAGE } from "./lib/limits";
import { cutPage, mergedLists, pageLimit, textSize } from "./lib/paging";
import { chatChunkRecord } from "./lib/records";
import { codePoints, fromCodePoint, validateChunk } from "./lib/rules";
import { chatChunkRecord as chunkValidator, machineToken, partFields } from "./lib/validators";

const MAX_PART_ID_LENGTH = 200;
/** Characters (code points) of a text or reasoning part (orchestrator.domain.parts.MAX_PART_TEXT, a whole reply). */
const MAX_PART_TEXT = 1_000_000;
/** Bounded fields of a part as JSON (64 KiB input + 64 KiB output + short ones). */
const MAX_PART_DATA = 400_000;
const TEXT_TYPES = new Set(["text", "reasoning"]);

const partRecord = v.object({
  ...partFields,
  /** 0, or how many segments hold the text (then `text` is ""; read them with parts.text). */
  textSegments: v.number(),
});

async function record(ctx: QueryCtx, part: Doc<"messageParts">) {
  // A long merged text stays in its segments: the caller reads them (parts.text).
  const segmented = part.textSegments !== undefined && !part.unmerged;
  const { text, sequence } = segmented ? { text: "", sequence: part.sequence } : await partText(ctx, part);
  return {
    partId: part.partId,
    messageId: part.messageId,
    chatSessionId: part.chatSessionId,
    position: part.position,
    type: part.type,
    text,
    data: part.data,
    updatedAt: part.updatedAt,
    sequence,
    textSegments: segmented ? part.textSegments! : 0,
  };
}

function validatePartId(partId: string): void {
  if (partId.trim() === "" || partId.length > MAX_PART_ID_LENGTH) {
    fail("InvalidInput", `A part ID must be 1 to ${MAX_PART_ID_LENGTH} characters.`);
  }
}

/** The sentence of orchestrator.domain.parts, for text and reasoning parts alike. */
function tooLongText(): never {
  fail("PayloadTooLarge", `A text part must be at most ${MAX_PART_TEXT} characters.`);
}

async function load(ctx: QueryCtx, messageId: string, partId: string) {
  return await ctx.db
    .query("messageParts")
    .withIndex("by_messageId_and_partId", (q) => q.eq("messageId", messageId).eq("partId", partId))
    .unique();
}

/** The session's next sequence (chunks and parts share it; the session is not written). */
async function nextSequence(ctx: MutationCtx, session: Doc<"chatSessions">): Promise<number> {
  return (await lastSequence(ctx, session)) + 1;
}

/** The position a new part of the session takes: after every other. */
async function nextPosition(ctx: QueryCtx, chatSessionId: string): Promise<number> {
  const last = await ctx.db
    .query("messageParts")
    .withIndex("by_chatSessionId_and_position", (q) => q.eq("chatSessionId", chatSessionId))
    .order("desc")
    .first();
  return (last?.position ?? 0) + 1;
}

/** The fields holding a part's `text`: inline when short, else in segments (written here). */
async function storedText(ctx: MutationCtx, message: Doc<"chatMessages">, partId: string, text: string) {
  const owner = { messageId: message.messageId, chatSessionId: message.chatSessionId, partId };
  const stored = await replaceText(ctx, owner, text);
  return { text: stored.text, textSegments: stored.segments };
}

/** Store a part of a streaming reply whole: created, or replaced as it moves. */
export const save = mutation({
  args: {
    ...machineToken,
    messageId: v.string(),
    partId: v.string(),
    type: v.string(),
    text: v.string(),
    data: v.string(),
  },
  returns: partRecord,
  handler: async (ctx, { messageId, partId, type, text, data, ...token }) => {
    const machine = await requireMachine(ctx, token);
    validatePartId(partId);
    const { message, session } = await machineMessage(ctx, machine.machineId, messageId);
    ensureStreaming(message);
    if (codePoints(text) > MAX_PART_TEXT) tooLongText();
    if (data.length > MAX_PART_DATA || type.length > 10_000) {
      fail("PayloadTooLarge", "This part is too large.");
    }
    const now = Date.now();
    const stored = await load(ctx, messageId, partId);
    const sequence = await nextSequence(ctx, session);
    // What the part's document takes from this change; only called when the text is stored.
    const changed = async () => ({
      type,
      ...(await storedText(ctx, message, partId, text)),
      data,
      updatedAt: now,
      sequence,
      isText: type === "text",
    });
    if (stored === null) {
      const id = await ctx.db.insert("messageParts", {
        partId,
        messageId,
        chatSessionId: message.chatSessionId,
        position: await nextPosition(ctx, message.chatSessionId),
        ...(await changed()),
      });
      return await record(ctx, (await ctx.db.get(id))!);
    }
    // A stale whole copy arriving after newer deltas never shortens the text.
    const stale =
      TEXT_TYPES.has(type) && stored.type === type && (await partLength(ctx, stored)) > codePoints(text);
    if (stale) {
      await ctx.db.patch(stored._id, { updatedAt: now, sequence });
    } else {
      // Chunks of the part still lie over the new text at their offsets (partText).
      await ctx.db.patch(stored._id, await changed());
    }
    return await record(ctx, (await ctx.db.get(stored._id))!);
  },
});

/** Grow a text or reasoning part by a delta at `offset`; new reply text is also a chunk. */
export const appendText = mutation({
  args: {
    ...machineToken,
    messageId: v.string(),
    partId: v.string(),
    kind: v.union(v.literal("text"), v.literal("reasoning")),
    offset: v.number(),
    text: v.string(),
  },
  returns: v.object({
    partId: v.string(),
    messageId: v.string(),
    length: v.number(),
    added: v.number(),
    chunk: v.union(chunkValidator, v.null()),
  }),
  handler: async (ctx, { messageId, partId, kind, offset, text, ...token }) => {
    const machine = await requireMachine(ctx, token);
    validatePartId(partId);
    validateChunk(text);
    const { message, session } = await machineMessage(ctx, machine.machineId, messageId);
    ensureStreaming(message);
    if (offset < 0 || !Number.isInteger(offset)) fail("InvalidInput", "A text offset must not be negative.");
    const stored = await load(ctx, messageId, partId);
    if (stored !== null && stored.type !== kind) fail("Conflict", `That part is not a ${kind} part.`);
    const length = stored === null ? 0 : await partLength(ctx, stored);
    if (offset > length) {
      fail(
        "TextGap",
        `This delta starts at character ${offset} but the part holds ${length};` +
          ` send again from character ${length}.`,
      );
    }
    // Offsets and lengths count characters (code points) as the machine does.
    const added = fromCodePoint(text, length - offset);
    const count = codePoints(added);
    if (length + count > MAX_PART_TEXT) tooLongText();
    const now = Date.now();
    // Reply text is only a chunk (one document): the part is written when it is
    // created and once more when the reply ends (lib/partText.ts). The part takes
    // its first chunk's sequence, so both resume from one number.
    const chunk =
      added !== "" && kind === "text"
        ? chatChunkRecord(await insertChunk(ctx, session, messageId, added, { partId, offset: length }))
        : null;
    if (stored === null) {
      await ctx.db.insert("messageParts", {
        partId,
        messageId,
        chatSessionId: message.chatSessionId,
        position: await nextPosition(ctx, message.chatSessionId),
        type: kind,
        ...(kind === "text" ? { text: "" } : await storedText(ctx, message, partId, added)),
        data: JSON.stringify({ type: kind }),
        updatedAt: now,
        sequence: chunk?.sequence ?? (await nextSequence(ctx, session)),
        isText: kind === "text",
        unmerged: kind === "text" ? true : undefined,
      });
    } else if (added !== "" && kind === "text" && !stored.unmerged) {
      await ctx.db.patch(stored._id, { unmerged: true });
    } else if (added !== "" && kind !== "text") {
      // Reasoning is not streamed as chunks: its text grows in place, split as a message's is.
      const sequence = await nextSequence(ctx, session);
      const owner = { messageId, chatSessionId: message.chatSessionId, partId };
      const grown = await appendToText(ctx, owner, { text: stored.text, segments: stored.textSegments }, added);
      await ctx.db.patch(stored._id, { text: grown.text, textSegments: grown.segments, updatedAt: now, sequence });
    }
    return { partId, messageId, length: length + count, added: count, chunk };
  },
});

/**
 * A page of the parts of a session's replies (or of one reply), in the order
 * they were made, after the part at `afterPosition`: a tool's output may hold
 * 64 KiB and a streaming text more, so a page is cut by size as well as count.
 */
export const listPage = serverQuery({
  args: {
    ...ownerOfSession,
    messageId: v.union(v.string(), v.null()),
    afterPosition: v.optional(v.number()),
    limit: v.number(),
  },
  returns: v.object({ parts: v.array(partRecord), hasMore: v.boolean() }),
  handler: async (ctx, { userId, chatSessionId, messageId, afterPosition, limit }) => {
    await ownedSession(ctx, userId, chatSessionId);
    const after = afterPosition ?? -1;
    const parts =
      messageId === null
        ? ctx.db
            .query("messageParts")
            .withIndex("by_chatSessionId_and_position", (q) =>
              q.eq("chatSessionId", chatSessionId).gt("position", after),
            )
        : ctx.db
            .query("messageParts")
            .withIndex("by_messageId_and_position", (q) => q.eq("messageId", messageId).gt("position", after));
    // A reply's parts belong to its session; another session's message lists nothing.
    async function* records() {
      for await (const part of parts) {
        if (part.chatSessionId !== chatSessionId) return;
        yield { part, record: await record(ctx, part) };
      }
    }
    const size = ({ part, record }: { part: Doc<"messageParts">; record: { text: string } }) =>
      getDocumentSize(part as unknown as Record<string, Value>) + textSize(record.text);
    const { items, hasMore } = await cutPage(records(), pageLimit(limit), size);
    return { parts: items.map((item) => item.record), hasMore };
  },
});

/** Segments of a long part of the user's session from `fromIndex` on (see lib/text.ts). */
export const text = serverQuery({
  args: {
    ...ownerOfSession,
    messageId: v.string(),
    partId: v.string(),
    fromIndex: v.number(),
  },
  returns: v.array(v.string()),
  handler: async (ctx, { userId, chatSessionId, messageId, partId, fromIndex }) => {
    await ownedSession(ctx, userId, chatSessionId);
    reachable(await load(ctx, messageId, partId), (p) => p.chatSessionId === chatSessionId, "No such part.");
    return await readSegments(ctx, messageId, fromIndex, partId);
  },
});

/**
 * Chunks, and parts other than text, changed after `afterSequence`, read in one
 * snapshot; a full page of one kind cuts the other at its end, so a reader
 * resuming from the last sequence returned misses nothing.
 */
export const eventsAfter = serverQuery({
  args: { ...ownerOfSession, afterSequence: v.number() },
  returns: v.object({ chunks: v.array(chunkValidator), parts: v.array(partRecord) }),
  handler: async (ctx, { userId, chatSessionId, afterSequence }) => {
    await ownedSession(ctx, userId, chatSessionId);
    // One page in sequence order, cut by size as well as count: a stream resumed from
    // far behind reads at most PAGE_BYTES and one event (a tool part may hold 400 kB).
    const chunks = sessionChunksAfter(ctx, chatSessionId, afterSequence);
    const parts = ctx.db
      .query("messageParts")
      .withIndex("by_chatSessionId_and_isText_and_sequence", (q) =>
        q.eq("chatSessionId", chatSessionId).eq("isText", false).gt("sequence", afterSequence),
      );
    const { items } = await cutPage(
      mergedLists(chunks[Symbol.asyncIterator](), parts[Symbol.asyncIterator](), (c, p) => c.sequence < p.sequence),
      CHUNK_PAGE,
      (event) => getDocumentSize(event as unknown as Record<string, Value>),
    );
    const found = { chunks: [] as Doc<"chatChunks">[], parts: [] as Doc<"messageParts">[] };
    for (const event of items) {
      if ("chunkId" in event) found.chunks.push(event);
      else found.parts.push(event);
    }
    return {
      chunks: found.chunks.map(chatChunkRecord),
      parts: await Promise.all(found.parts.map((part) => record(ctx, part))),
    };
  },
});

/** Merge the next batch of a finished reply's text parts (lib/partText.ts mergeReply). */
export const mergeRest = internalMutation({
  args: { messageId: v.string(), afterPosition: v.number() },
  returns: v.null(),
  handler: async (ctx, { messageId, afterPosition }): Promise<null> => {
    await mergeReply(ctx, messageId, afterPosition);
    return null;
  },
});
