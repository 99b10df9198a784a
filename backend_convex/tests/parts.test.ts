/** Parts of replies: stored whole, grown by idempotent text deltas, listed in order, owner only. */
import { describe, expect, test } from "vitest";
import { api } from "../convex/_generated/api";
import { newChat, newDeployment, newMachine, newUser, refused, SECRET } from "./setup";

async function streamingReply(t: ReturnType<typeof newDeployment>) {
  const chat = await newChat(t);
  const session = { ...chat.owner, chatSessionId: chat.session.chatSessionId };
  const asked = await t.mutation(api.chat.sendMessage, { ...session, content: "hi" });
  const reply = await t.mutation(api.chatMachine.claimMessage, { ...chat.token, messageId: asked.messageId });
  return { chat, session, reply };
}

describe("parts", () => {
  test("text deltas append once, refuse gaps and stream new text as chunks", async () => {
    const t = newDeployment();
    const { chat, session, reply } = await streamingReply(t);
    const append = (offset: number, text: string, kind: "text" | "reasoning" = "text") =>
      t.mutation(api.parts.appendText, { ...chat.token, messageId: reply.messageId, partId: "prt_t", kind, offset, text });
    expect(await append(0, "Hello")).toMatchObject({ length: 5, added: 5, chunk: { chunk: "Hello", sequence: 1 } });
    expect(await append(0, "Hello")).toMatchObject({ length: 5, added: 0, chunk: null });
    expect(await append(3, "lo!")).toMatchObject({
      length: 6,
      added: 1,
      chunk: { chunk: "!", sequence: 2, partId: "prt_t", offset: 5 },
    });
    await refused(append(9, "x"), "TextGap", "This delta starts at character 9 but the part holds 6; send again from character 6.");
    await refused(append(6, "x", "reasoning"), "Conflict", "That part is not a reasoning part.");
    const { parts } = await t.query(api.parts.listPage, { ...session, messageId: null, limit: 200 });
    expect(parts).toMatchObject([{ partId: "prt_t", type: "text", text: "Hello!", position: 1, sequence: 2 }]);
    const events = await t.query(api.parts.eventsAfter, { ...session, afterSequence: 1 });
    expect(events).toMatchObject({ chunks: [{ chunk: "!", sequence: 2 }], parts: [] });
  });

  test("a part is replaced whole, never shortening streamed text, and listed in order", async () => {
    const t = newDeployment();
    const { chat, session, reply } = await streamingReply(t);
    const save = (partId: string, type: string, text: string, data: object) =>
      t.mutation(api.parts.save, {
        ...chat.token,
        messageId: reply.messageId,
        partId,
        type,
        text,
        data: JSON.stringify({ type, ...data }),
      });
    await save("prt_a", "tool", "", { state: { status: "pending" } });
    await save("prt_t", "text", "Hello there", {});
    await save("prt_a", "tool", "", { state: { status: "completed" } });
    expect(await save("prt_t", "text", "Hello", {})).toMatchObject({ text: "Hello there" });
    const { parts } = await t.query(api.parts.listPage, { ...session, messageId: reply.messageId, limit: 200 });
    expect(parts.map((p) => [p.partId, p.position])).toEqual([
      ["prt_a", 1],
      ["prt_t", 2],
    ]);
    expect(JSON.parse(parts[0].data)).toEqual({ type: "tool", state: { status: "completed" } });
    // Text streams as chunks; the other parts come by the session's sequence, replaced ones again.
    const changed = await t.query(api.parts.eventsAfter, { ...session, afterSequence: 0 });
    expect(changed.parts.map((p) => [p.partId, p.sequence])).toEqual([["prt_a", 3]]);
    expect(changed.chunks).toEqual([]);
    expect(await t.query(api.parts.eventsAfter, { ...session, afterSequence: 3 })).toEqual({ chunks: [], parts: [] });
  });

  test("other machines and users reach no parts; ended replies take none", async () => {
    const t = newDeployment();
    const { chat, session, reply } = await streamingReply(t);
    const bob = await newUser(t, "bob");
    const { token: other } = await newMachine(t, bob, "other", true);
    const delta = { messageId: reply.messageId, partId: "prt_t", kind: "text" as const, offset: 0, text: "x" };
    await refused(t.mutation(api.parts.appendText, { ...other, ...delta }), "NotFound", "No such message.");
    await refused(
      t.mutation(api.parts.appendText, { ...chat.token, machineSecret: "wrong", ...delta }),
      "AuthenticationFailed",
    );
    await refused(
      t.query(api.parts.listPage, { serverSecret: SECRET, userId: bob, chatSessionId: session.chatSessionId, messageId: null, limit: 200 }),
      "NotFound",
    );
    await t.mutation(api.chatMachine.completeMessage, { ...chat.token, messageId: reply.messageId, content: "" });
    await refused(t.mutation(api.parts.appendText, { ...chat.token, ...delta }), "Conflict", "This reply has already ended.");
  });
});
