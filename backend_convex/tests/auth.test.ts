/** Who may call: the deployment secret for the web server, the machine secret for machines. */
import { describe, expect, test, vi } from "vitest";
import { api } from "../convex/_generated/api";
import { constantTimeEqual, hashSecret } from "../convex/lib/auth";
import { newChat, newDeployment, newMachine, newUser, refused, SECRET } from "./setup";

const WRONG = "The server secret is wrong. Give the web server the ORCHESTRATOR_SERVER_SECRET set on the Convex deployment.";

/** Every function the web server calls, with arguments that would otherwise succeed or fail later. */
function serverCalls(t: ReturnType<typeof newDeployment>, serverSecret: string, ids: Record<string, string>) {
  const owner = { serverSecret, userId: ids.userId };
  return [
    () => t.mutation(api.accounts.create, { serverSecret, username: "mallory", passwordHash: "h" }),
    () => t.query(api.accounts.find, { serverSecret, username: "alice" }),
    () => t.query(api.accounts.get, owner),
    () => t.query(api.accounts.count, { serverSecret }),
    () => t.query(api.accounts.listPage, { serverSecret, limit: 50 }),
    () => t.mutation(api.accounts.setPasswordHash, { ...owner, passwordHash: "h" }),
    () => t.mutation(api.signIns.add, { ...owner, signInId: "sgn_x" }),
    () => t.query(api.signIns.has, { ...owner, signInId: "sgn_x" }),
    () => t.mutation(api.signIns.end, { ...owner, signInId: "sgn_x" }),
    () => t.mutation(api.signIns.endOthers, { ...owner, keep: null }),
    () => t.action(api.machines.create, { ...owner, name: "x" }),
    () => t.query(api.machines.listPage, { ...owner, limit: 20 }),
    () => t.query(api.machines.get, { ...owner, machineId: ids.machineId }),
    () => t.mutation(api.machines.remove, { ...owner, machineId: ids.machineId }),
    () => t.mutation(api.machines.markStaleOffline, { serverSecret, lastSeenBefore: Date.now() + 60_000 }),
    () => t.mutation(api.workers.add, { ...owner, machineId: ids.machineId, directory: "a", name: null }),
    () => t.mutation(api.workers.issueToken, { ...owner, machineId: ids.machineId }),
    () => t.mutation(api.workers.approve, { ...owner, workerId: ids.workerId }),
    () => t.mutation(api.workers.reject, { ...owner, workerId: ids.workerId }),
    () => t.mutation(api.workers.remove, { ...owner, workerId: ids.workerId }),
    () => t.query(api.workers.list, { ...owner, machineId: ids.machineId }),
    () => t.query(api.workers.listPendingPage, { ...owner, limit: 50 }),
    () => t.mutation(api.chat.startSession, { ...owner, workerId: ids.workerId, model: "fake/small" }),
    () => t.mutation(api.chat.endSession, { ...owner, chatSessionId: ids.sessionId }),
    () => t.mutation(api.chat.restoreSession, { ...owner, chatSessionId: ids.sessionId }),
    () => t.query(api.chat.getSession, { ...owner, chatSessionId: ids.sessionId }),
    () => t.query(api.chat.listSessionsPage, { ...owner, workerId: ids.workerId, limit: 50 }),
    () => t.mutation(api.chat.sendMessage, { ...owner, chatSessionId: ids.sessionId, content: "hi" }),
    () => t.query(api.chat.listMessagesPage, { ...owner, chatSessionId: ids.sessionId, limit: 50 }),
    () => t.mutation(api.chat.requestAbort, { ...owner, chatSessionId: ids.sessionId }),
    () => t.query(api.chat.listPermissionsPage, { ...owner, chatSessionId: ids.sessionId, limit: 50 }),
    () => t.mutation(api.chat.answerPermission, { ...owner, permissionId: "prm_x", answer: "once" }),
    () => t.query(api.chat.chunksAfter, { ...owner, chatSessionId: ids.sessionId, afterSequence: 0 }),
    () => t.mutation(api.commands.create, {
      ...owner,
      machineId: ids.machineId,
      kind: "mkdir",
      arguments: { path: "a", parents: false, url: null, cursor: null },
    }),
    () => t.query(api.commands.get, { ...owner, commandId: "cmd_x" }),
    () => t.query(api.commands.list, { ...owner, machineId: ids.machineId }),
    () => t.mutation(api.commands.cancel, { ...owner, commandId: "cmd_x" }),
  ];
}

describe("the deployment secret", () => {
  test("a wrong server secret is refused by every server function, and nothing changes", async () => {
    const t = newDeployment();
    const chat = await newChat(t);
    const ids = {
      userId: chat.alice,
      machineId: chat.machine.machineId,
      workerId: chat.worker.workerId,
      sessionId: chat.session.chatSessionId,
    };
    for (const call of serverCalls(t, "not-the-secret", ids)) {
      await refused(call(), "AuthenticationFailed", WRONG);
    }
    expect(await t.query(api.accounts.count, { serverSecret: SECRET })).toBe(1);
    expect((await t.query(api.machines.listPage, { serverSecret: SECRET, userId: chat.alice, limit: 20 })).machines).toHaveLength(1);
    expect((await t.query(api.chat.listMessagesPage, { ...chat.owner, chatSessionId: ids.sessionId, limit: 50 })).messages).toEqual([]);
  });

  test("a deployment without the secret (or with a short one) refuses every server call", async () => {
    const t = newDeployment();
    const ids = { userId: "usr_x", machineId: "mch_x", workerId: "wrk_x", sessionId: "chs_x" };
    for (const value of ["", "too-short"]) {
      vi.stubEnv("ORCHESTRATOR_SERVER_SECRET", value);
      for (const call of serverCalls(t, value, ids)) {
        await refused(call(), "AuthenticationFailed", /has no ORCHESTRATOR_SERVER_SECRET of at least 32 characters/);
      }
    }
  });
});

describe("machine tokens", () => {
  test("the deployment stores only the SHA-256 of a 256-bit secret", async () => {
    const t = newDeployment();
    const alice = await newUser(t, "alice");
    const { machine, token } = await newMachine(t, alice);
    expect(token.machineSecret).toMatch(/^sec_[A-Za-z0-9_-]{43}$/);
    const stored = await t.run(async (ctx) => await ctx.db.query("machines").collect());
    expect(stored).toHaveLength(1);
    expect(stored[0].secretHash).toBe(await hashSecret(token.machineSecret));
    expect(JSON.stringify(stored)).not.toContain(token.machineSecret);
    expect(await t.query(api.machines.authenticate, token)).toEqual(machine);
  });

  test("a wrong secret and an unknown machine are refused alike by every machine function", async () => {
    const t = newDeployment();
    const chat = await newChat(t);
    const message = await t.mutation(api.chat.sendMessage, { ...chat.owner, chatSessionId: chat.session.chatSessionId, content: "hi" });
    for (const bad of [
      { machineId: chat.token.machineId, machineSecret: "sec_wrong" },
      { machineId: "mch_unknown", machineSecret: chat.token.machineSecret },
    ]) {
      const calls = [
        () => t.query(api.machines.authenticate, bad),
        () => t.mutation(api.machines.goOnline, { ...bad, rootDirectory: "/r" }),
        () => t.mutation(api.machines.heartbeat, bad),
        () => t.mutation(api.machines.goOffline, bad),
        () => t.query(api.workers.listOwn, bad),
        () => t.mutation(api.workers.register, { ...bad, tokenMachineId: bad.machineId, workerId: "wrk_x", directory: "a", name: null }),
        () => t.mutation(api.workers.heartbeat, { ...bad, workerId: chat.worker.workerId }),
        () => t.mutation(api.workers.offline, { ...bad, workerId: chat.worker.workerId }),
        () => t.mutation(api.workers.updateModels, { ...bad, workerId: chat.worker.workerId, models: [] }),
        () => t.query(api.chatMachine.work, bad),
        () => t.query(api.chatMachine.listSessionMessagesPage, { ...bad, chatSessionId: chat.session.chatSessionId, limit: 50 }),
        () => t.mutation(api.chatMachine.claimMessage, { ...bad, messageId: message.messageId }),
        () => t.mutation(api.chatMachine.appendChunk, { ...bad, messageId: message.messageId, text: "x" }),
        () => t.mutation(api.chatMachine.completeMessage, { ...bad, messageId: message.messageId, content: "x" }),
        () => t.mutation(api.chatMachine.endReply, { ...bad, messageId: message.messageId, status: "failed", reason: "x" }),
        () => t.mutation(api.chatMachine.updateSession, {
          ...bad,
          chatSessionId: chat.session.chatSessionId,
          status: null,
          agentSessionId: null,
          title: "x",
        }),
        () => t.mutation(api.chatMachine.recordPermission, { ...bad, messageId: message.messageId, agentRequestId: "p", tool: "t", description: "d" }),
        () => t.mutation(api.chatMachine.resolvePermission, { ...bad, permissionId: "prm_x" }),
        () => t.query(api.commands.listOpen, bad),
        () => t.mutation(api.commands.claimCommand, { ...bad, commandId: "cmd_x" }),
        () => t.mutation(api.commands.reportProgress, { ...bad, commandId: "cmd_x", progress: 1, line: "" }),
        () => t.mutation(api.commands.finishCommand, { ...bad, commandId: "cmd_x", result: null, error: "x" }),
      ];
      for (const call of calls) await refused(call(), "AuthenticationFailed", "Invalid token");
    }
    const [listed] = (await t.query(api.chat.listMessagesPage, { ...chat.owner, chatSessionId: chat.session.chatSessionId, limit: 50 })).messages;
    expect(listed.status).toBe("pending");
  });

  test("a deleted machine's token stops working at once", async () => {
    const t = newDeployment();
    const alice = await newUser(t, "alice");
    const { machine, token } = await newMachine(t, alice, "laptop", true);
    await t.mutation(api.machines.remove, { serverSecret: SECRET, userId: alice, machineId: machine.machineId });
    await refused(t.mutation(api.machines.heartbeat, token), "AuthenticationFailed", "Invalid token");
  });

  test("constantTimeEqual compares whole strings", () => {
    expect(constantTimeEqual("abc", "abc")).toBe(true);
    expect(constantTimeEqual("abc", "abd")).toBe(false);
    expect(constantTimeEqual("abc", "abcd")).toBe(false);
    expect(constantTimeEqual("", "")).toBe(true);
  });
});
