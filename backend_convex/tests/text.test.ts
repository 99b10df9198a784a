import { afterEach, expect, test, vi } from "vitest";
import { api } from "../convex/_generated/api";
import { INLINE_UNITS, SEGMENT_UNITS, segments } from "../convex/lib/text";
import { newChat, newDeployment } from "./setup";

afterEach(() => {
  vi.useRealTimers();
});

test("segments never split a surrogate pair and join back to the text", () => {
  const text = "a" + "🙂".repeat(SEGMENT_UNITS);
  const pieces = segments(text);
  expect(pieces.join("")).toBe(text);
  for (const piece of pieces) {
    expect(piece.length).toBeLessThanOrEqual(SEGMENT_UNITS);
    // A lone surrogate would not survive UTF-8: the piece would not round-trip.
    expect(new TextDecoder().decode(new TextEncoder().encode(piece))).toBe(piece);
  }
});

test("a reply too long for one document is kept in segments and read back whole", async () => {
  const t = newDeployment();
  const chat = await newChat(t);
  const chatSessionId = chat.session.chatSessionId;
  const asked = await t.mutation(api.chat.sendMessage, { ...chat.owner, chatSessionId, content: "hi" });
  const reply = await t.mutation(api.chatMachine.claimMessage, { ...chat.token, messageId: asked.messageId });
  const content = "漢字🙂".repeat(250_000);
  const done = await t.mutation(api.chatMachine.completeMessage, { ...chat.token, messageId: reply.messageId, content });
  expect(done.content).toBe("");
  expect(done.contentSegments).toBe(Math.ceil(content.length / SEGMENT_UNITS));
  const read: string[] = [];
  while (read.length < done.contentSegments) {
    read.push(
      ...(await t.query(api.chat.messageText, {
        ...chat.owner,
        chatSessionId,
        messageId: reply.messageId,
        fromIndex: read.length,
      })),
    );
  }
  expect(read.join("")).toBe(content);
  expect(content.length).toBeGreaterThan(INLINE_UNITS);
});

test("a worker's long replies are deleted in bounded batches", async () => {
  vi.useFakeTimers();
  const t = newDeployment();
  const chat = await newChat(t);
  const chatSessionId = chat.session.chatSessionId;
  for (let i = 0; i < 17; i++) {
    const asked = await t.mutation(api.chat.sendMessage, { ...chat.owner, chatSessionId, content: "hi" });
    const reply = await t.mutation(api.chatMachine.claimMessage, { ...chat.token, messageId: asked.messageId });
    await t.mutation(api.chatMachine.completeMessage, {
      ...chat.token,
      messageId: reply.messageId,
      content: "x".repeat(1_000_000),
    });
  }
  await t.mutation(api.workers.remove, { ...chat.owner, workerId: chat.worker.workerId });
  await t.finishAllScheduledFunctions(vi.runAllTimers);
  const left = await t.run(async (ctx) => ({
    segments: (await ctx.db.query("textSegments").collect()).length,
    messages: (await ctx.db.query("chatMessages").collect()).length,
  }));
  expect(left).toEqual({ segments: 0, messages: 0 });
});
