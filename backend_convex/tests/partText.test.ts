/** Streaming a text part writes one chunk per delta; its end merges them and later deletes them. */
import { afterEach, expect, test, vi } from "vitest";
import { api } from "../convex/_generated/api";
import { BYTES_BUDGET } from "../convex/lib/cascade";
import { CHUNK_GRACE_MS } from "../convex/lib/partText";
import { newChat, newDeployment } from "./setup";

afterEach(() => {
  vi.useRealTimers();
});

/** A deployment on fake timers whose session has a reply its machine has claimed. */
async function streamingReply() {
  vi.useFakeTimers();
  const t = newDeployment();
  const chat = await newChat(t);
  const session = { ...chat.owner, chatSessionId: chat.session.chatSessionId };
  const asked = await t.mutation(api.chat.sendMessage, { ...session, content: "hi" });
  const reply = await t.mutation(api.chatMachine.claimMessage, { ...chat.token, messageId: asked.messageId });
  return { t, chat, session, reply };
}

test("deltas leave the session alone; the reply's end merges its chunks into the part, then drops them", async () => {
  const { t, chat, session, reply } = await streamingReply();
  const sessionDoc = () =>
    t.run(async (ctx) => await ctx.db.query("chatSessions").withIndex("by_chatSessionId", (q) => q.eq("chatSessionId", session.chatSessionId)).unique());
  const before = await sessionDoc();
  let offset = 0;
  for (const piece of ["Hel", "lo, ", "world", "!"]) {
    await t.mutation(api.parts.appendText, {
      ...chat.token,
      messageId: reply.messageId,
      partId: "prt_t",
      kind: "text",
      offset,
      text: piece,
    });
    offset += piece.length;
  }
  expect(await sessionDoc()).toEqual(before);
  const rows = () =>
    t.run(async (ctx) => ({
      chunks: (await ctx.db.query("chatChunks").collect()).length,
      part: (await ctx.db.query("messageParts").collect()).map((p) => [p.text, p.unmerged ?? false]),
    }));
  expect(await rows()).toEqual({ chunks: 4, part: [["", true]] });
  await t.mutation(api.chatMachine.completeMessage, { ...chat.token, messageId: reply.messageId, content: "Hello, world!" });
  expect(await rows()).toEqual({ chunks: 4, part: [["Hello, world!", false]] });
  // Still there for a stream resuming inside the reply, then gone.
  const resumed = await t.query(api.parts.eventsAfter, { ...session, afterSequence: 2 });
  expect(resumed.chunks.map((c) => c.chunk)).toEqual(["world", "!"]);
  vi.advanceTimersByTime(CHUNK_GRACE_MS);
  await t.finishAllScheduledFunctions(vi.runAllTimers);
  expect(await rows()).toEqual({ chunks: 0, part: [["Hello, world!", false]] });
  const [part] = (await t.query(api.parts.listPage, { ...session, messageId: null, limit: 200 })).parts;
  expect(part).toMatchObject({ text: "Hello, world!", sequence: 4 });
  // The next reply's chunks carry on from the session's sequence.
  const again = await t.mutation(api.chat.sendMessage, { ...session, content: "more" });
  const next = await t.mutation(api.chatMachine.claimMessage, { ...chat.token, messageId: again.messageId });
  const chunk = await t.mutation(api.chatMachine.appendChunk, { ...chat.token, messageId: next.messageId, text: "x" });
  expect(chunk.sequence).toBe(5);
});

test("a reply whose parts pass the read budget is merged in batches, the last text part too", async () => {
  const { t, chat, reply } = await streamingReply();
  const output = "o".repeat(300_000);
  const parts = Math.ceil(BYTES_BUDGET / output.length) + 1;
  for (let n = 0; n < parts; n++) {
    const data = JSON.stringify({ type: "tool", state: { status: "completed", output } });
    await t.mutation(api.parts.save, { ...chat.token, messageId: reply.messageId, partId: `prt_${n}`, type: "tool", text: "", data });
  }
  const delta = { messageId: reply.messageId, partId: "prt_t", kind: "text" as const, offset: 0, text: "last" };
  await t.mutation(api.parts.appendText, { ...chat.token, ...delta });
  await t.mutation(api.chatMachine.completeMessage, { ...chat.token, messageId: reply.messageId, content: "last" });
  const textPart = () =>
    t.run(async (ctx) => {
      const part = await ctx.db.query("messageParts").withIndex("by_messageId_and_position", (q) => q.eq("messageId", reply.messageId)).order("desc").first();
      return [part!.text, part!.unmerged ?? false];
    });
  expect(await textPart()).toEqual(["", true]);
  await t.finishAllScheduledFunctions(vi.runAllTimers);
  expect(await textPart()).toEqual(["last", false]);
  expect(await t.run(async (ctx) => (await ctx.db.query("chatChunks").collect()).length)).toBe(0);
});
