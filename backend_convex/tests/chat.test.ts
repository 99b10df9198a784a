/** Chat rules: claims in order, one streaming reply, gap-free sequences, endings, permissions. */
import { describe, expect, test } from "vitest";
import { api } from "../convex/_generated/api";
import { newChat, newDeployment, newMachine, newUser, refused, SECRET, type Deployment } from "./setup";

/** Alice's chat, the owner's arguments for its session, and bob, who owns none of it. */
async function chatAndStranger(t: Deployment) {
  const chat = await newChat(t);
  const bob = await newUser(t, "bob");
  return { chat, bob, session: { ...chat.owner, chatSessionId: chat.session.chatSessionId } };
}

describe("a reply's life", () => {
  test("messages are claimed once, in order, and not while a reply streams", async () => {
    const t = newDeployment();
    const chat = await newChat(t);
    const session = { ...chat.owner, chatSessionId: chat.session.chatSessionId };
    const first = await t.mutation(api.chat.sendMessage, { ...session, content: "one" });
    const second = await t.mutation(api.chat.sendMessage, { ...session, content: "two" });
    const claim = (messageId: string) => t.mutation(api.chatMachine.claimMessage, { ...chat.token, messageId });
    await refused(claim(second.messageId), "Conflict", "An older message of this session must be claimed first.");
    const reply = await claim(first.messageId);
    expect(reply).toMatchObject({ role: "assistant", status: "streaming", replyTo: first.messageId, content: "" });
    await refused(claim(first.messageId), "Conflict", "This message has already been claimed.");
    await refused(claim(second.messageId), "Conflict", "A reply of this session is still streaming. End it first.");
    const chunks = [];
    for (const text of ["Hel", "lo"]) {
      chunks.push(await t.mutation(api.chatMachine.appendChunk, { ...chat.token, messageId: reply.messageId, text }));
    }
    expect(chunks.map((c) => c.sequence)).toEqual([1, 2]);
    const ended = await t.mutation(api.chatMachine.endReply, {
      ...chat.token,
      messageId: reply.messageId,
      status: "interrupted",
      reason: "Restarted",
    });
    expect(ended).toMatchObject({ status: "interrupted", content: "Hello", error: "Restarted" });
    await refused(
      t.mutation(api.chatMachine.completeMessage, { ...chat.token, messageId: reply.messageId, content: "x" }),
      "Conflict",
      "This reply has already ended.",
    );
    const next = await claim(second.messageId);
    const chunk = await t.mutation(api.chatMachine.appendChunk, { ...chat.token, messageId: next.messageId, text: "!" });
    expect(chunk.sequence).toBe(3);
    expect(await t.query(api.chat.chunksAfter, { ...session, afterSequence: 1 })).toEqual([chunks[1], chunk]);
  });

  test("bad input is refused with the domain's sentences", async () => {
    const t = newDeployment();
    const chat = await newChat(t);
    const session = { ...chat.owner, chatSessionId: chat.session.chatSessionId };
    await refused(t.mutation(api.chat.sendMessage, { ...session, content: " \u3000\x1c" }), "InvalidInput", "A message must not be empty.");
    await refused(
      t.mutation(api.chat.sendMessage, { ...session, content: "x".repeat(100_001) }),
      "PayloadTooLarge",
      "A message must be at most 100000 characters.",
    );
    // Lengths are counted in code points, as Python counts them: 100000 emoji fit.
    await t.mutation(api.chat.sendMessage, { ...session, content: "😀".repeat(100_000) });
    await refused(
      t.mutation(api.chat.startSession, { ...chat.owner, workerId: chat.worker.workerId, model: "gpt-9" }),
      "InvalidInput",
      "The worker does not offer model gpt-9. Pick one of: fake/small, fake/large.",
    );
    const update = { ...chat.token, chatSessionId: chat.session.chatSessionId, agentSessionId: null };
    await refused(
      t.mutation(api.chatMachine.updateSession, { ...update, status: "terminated", title: null }),
      "InvalidTransition",
      "Only the owner of a session can end it.",
    );
    await refused(
      t.mutation(api.chatMachine.updateSession, { ...update, status: null, title: "t".repeat(201) }),
      "PayloadTooLarge",
      "A title must be at most 200 characters.",
    );
  });

  test("ending a session flags its streaming reply and keeps queued messages waiting", async () => {
    const t = newDeployment();
    const chat = await newChat(t);
    const session = { ...chat.owner, chatSessionId: chat.session.chatSessionId };
    const asked = await t.mutation(api.chat.sendMessage, { ...session, content: "hi" });
    const reply = await t.mutation(api.chatMachine.claimMessage, { ...chat.token, messageId: asked.messageId });
    await t.mutation(api.chat.sendMessage, { ...session, content: "queued" });
    const ended = await t.mutation(api.chat.endSession, session);
    expect(ended.status).toBe("terminated");
    const [work] = await t.query(api.chatMachine.work, chat.token);
    expect(work.pendingMessages).toEqual([]);
    expect(work.streamingReply).toMatchObject({ messageId: reply.messageId, abortRequested: true });
    await refused(t.mutation(api.chat.sendMessage, { ...session, content: "x" }), "Conflict", "This session has ended. Restore it to continue.");
    await t.mutation(api.chatMachine.endReply, { ...chat.token, messageId: reply.messageId, status: "aborted", reason: "Ended" });
    expect(await t.query(api.chatMachine.work, chat.token)).toEqual([]);
    expect((await t.mutation(api.chat.restoreSession, session)).status).toBe("idle");
    const [restored] = await t.query(api.chatMachine.work, chat.token);
    expect(restored.pendingMessages.map((m) => m.content)).toEqual(["queued"]);
  });

  test("permission requests: pending, answered once, resolved once, expired with the reply", async () => {
    const t = newDeployment();
    const chat = await newChat(t);
    const asked = await t.mutation(api.chat.sendMessage, { ...chat.owner, chatSessionId: chat.session.chatSessionId, content: "hi" });
    const reply = await t.mutation(api.chatMachine.claimMessage, { ...chat.token, messageId: asked.messageId });
    const record = (agentRequestId: string) =>
      t.mutation(api.chatMachine.recordPermission, { ...chat.token, messageId: reply.messageId, agentRequestId, tool: "bash", description: "ls" });
    const first = await record("p1");
    const second = await record("p2");
    await refused(
      t.mutation(api.chatMachine.resolvePermission, { ...chat.token, permissionId: first.permissionId }),
      "Conflict",
      "This permission request has no answer to pass on.",
    );
    const answered = await t.mutation(api.chat.answerPermission, { ...chat.owner, permissionId: first.permissionId, answer: "once" });
    expect(answered).toMatchObject({ status: "answered", answer: "once" });
    const [work] = await t.query(api.chatMachine.work, chat.token);
    expect(work.answeredPermissions).toEqual([answered]);
    const resolved = await t.mutation(api.chatMachine.resolvePermission, { ...chat.token, permissionId: first.permissionId });
    expect(resolved.status).toBe("resolved");
    await t.mutation(api.chatMachine.completeMessage, { ...chat.token, messageId: reply.messageId, content: "done" });
    await refused(
      t.mutation(api.chat.answerPermission, { ...chat.owner, permissionId: second.permissionId, answer: "reject" }),
      "Conflict",
      "This permission request is no longer waiting for an answer.",
    );
    const session = { ...chat.owner, chatSessionId: chat.session.chatSessionId };
    expect((await t.query(api.chat.listPermissionsPage, { ...session, limit: 50 })).permissions).toEqual([]);
    const history = (await t.query(api.chat.listPermissionsPage, { ...session, all: true, limit: 50 })).permissions;
    expect(history.map((p) => [p.agentRequestId, p.status, p.answer ?? null])).toEqual([
      ["p1", "resolved", "once"],
      ["p2", "expired", null],
    ]);
  });

  test("the owner renames a session: trimmed, bounded, nobody else", async () => {
    const t = newDeployment();
    const { bob, session } = await chatAndStranger(t);
    const renamed = await t.mutation(api.chat.renameSession, { ...session, title: "  Fix <b>it</b> " });
    expect(renamed.title).toBe("Fix <b>it</b>");
    await refused(t.mutation(api.chat.renameSession, { ...session, title: "x".repeat(10_000) }), "PayloadTooLarge", "A title must be at most 200 characters.");
    await refused(t.mutation(api.chat.renameSession, { ...session, userId: bob, title: "mine" }), "NotFound", "No such chat session.");
    expect((await t.query(api.chat.getSession, session)).title).toBe("Fix <b>it</b>");
  });

  test("undo and redo: asked by the owner, carried out by the machine, refused when ended", async () => {
    const t = newDeployment();
    const { chat, bob, session } = await chatAndStranger(t);
    const asked = await t.mutation(api.chat.sendMessage, { ...session, content: "write a.txt" });
    const reply = await t.mutation(api.chatMachine.claimMessage, { ...chat.token, messageId: asked.messageId });
    const data = JSON.stringify({ type: "turn-diff", agent_message_id: "msg_agent", files: [], more_files: 0 });
    await t.mutation(api.parts.save, { ...chat.token, messageId: reply.messageId, partId: "turn-diff", type: "turn-diff", text: "", data });
    await refused(t.mutation(api.chat.undoTurn, { ...session, messageId: reply.messageId }), "Conflict", "Wait for the reply to finish before undoing or redoing a turn.");
    await t.mutation(api.chatMachine.completeMessage, { ...chat.token, messageId: reply.messageId, content: "done" });
    await refused(t.mutation(api.chat.undoTurn, { ...session, messageId: asked.messageId }), "NotFound", "No such reply in this session.");
    await refused(t.mutation(api.chat.undoTurn, { ...session, userId: bob, messageId: reply.messageId }), "NotFound", "No such chat session.");
    const undone = await t.mutation(api.chat.undoTurn, { ...session, messageId: reply.messageId });
    expect([undone.undoneFrom, undone.undoAgentId, undone.undoRequests, undone.undoApplied]).toEqual([reply.messageId, "msg_agent", 1, 0]);
    const done = await t.mutation(api.chatMachine.reportUndo, { ...chat.token, chatSessionId: session.chatSessionId, applied: 1, error: null });
    expect(done.undoApplied).toBe(1);
    const redone = await t.mutation(api.chat.redoTurns, session);
    expect([redone.undoneFrom, redone.undoRequests]).toEqual([null, 2]);
    await t.mutation(api.chat.endSession, session);
    await refused(t.mutation(api.chat.undoTurn, { ...session, messageId: reply.messageId }), "Conflict", "This session has ended. Restore it to continue.");
  });

  test("another machine and another user reach nothing of the chat", async () => {
    const t = newDeployment();
    const chat = await newChat(t);
    const bob = await newUser(t, "bob");
    const { token: other } = await newMachine(t, chat.alice, "desktop", true);
    const asked = await t.mutation(api.chat.sendMessage, { ...chat.owner, chatSessionId: chat.session.chatSessionId, content: "hi" });
    await refused(t.mutation(api.chatMachine.claimMessage, { ...other, messageId: asked.messageId }), "NotFound", "No such message.");
    await refused(
      t.query(api.chatMachine.listSessionMessagesPage, { ...other, chatSessionId: chat.session.chatSessionId, limit: 50 }),
      "NotFound",
      "No such chat session.",
    );
    await refused(
      t.query(api.chat.listMessagesPage, { serverSecret: SECRET, userId: bob, chatSessionId: chat.session.chatSessionId, limit: 50 }),
      "NotFound",
      "No such chat session.",
    );
    expect(await t.query(api.chatMachine.work, other)).toEqual([]);
  });
});
