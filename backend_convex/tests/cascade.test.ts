/** Deleting a worker or a machine: gone at once, descendants purged in bounded batches. */
import { afterEach, expect, test, vi } from "vitest";
import { api } from "../convex/_generated/api";
import { INLINE_BUDGET } from "../convex/lib/cascade";
import { newChat, newDeployment, refused, SECRET } from "./setup";

afterEach(() => {
  vi.useRealTimers();
});

async function countRows(t: ReturnType<typeof newDeployment>) {
  return await t.run(async (ctx) => ({
    sessions: (await ctx.db.query("chatSessions").collect()).length,
    messages: (await ctx.db.query("chatMessages").collect()).length,
    chunks: (await ctx.db.query("chatChunks").collect()).length,
    turns: (await ctx.db.query("openTurns").collect()).length,
  }));
}

test("a long chat is purged in the background after its worker is removed", async () => {
  vi.useFakeTimers();
  const t = newDeployment();
  const chat = await newChat(t);
  const asked = await t.mutation(api.chat.sendMessage, { ...chat.owner, chatSessionId: chat.session.chatSessionId, content: "hi" });
  const reply = await t.mutation(api.chatMachine.claimMessage, { ...chat.token, messageId: asked.messageId });
  await t.run(async (ctx) => {
    // More rows than one deleting mutation may touch.
    for (let sequence = 1; sequence <= INLINE_BUDGET + 100; sequence++) {
      await ctx.db.insert("chatChunks", {
        chunkId: `chk_${sequence}`,
        messageId: reply.messageId,
        chatSessionId: chat.session.chatSessionId,
        chunk: "x",
        sequence,
        timestamp: 0,
      });
    }
  });
  await t.mutation(api.workers.remove, { ...chat.owner, workerId: chat.worker.workerId });
  // Unreachable at once, though not all rows are gone yet.
  await refused(
    t.query(api.chat.getSession, { ...chat.owner, chatSessionId: chat.session.chatSessionId }),
    "NotFound",
    "No such chat session.",
  );
  expect(await countRows(t)).toMatchObject({ turns: 2 }); // purged with the rest, below
  expect((await countRows(t)).chunks).toBeGreaterThan(0);
  await t.finishAllScheduledFunctions(vi.runAllTimers);
  expect(await countRows(t)).toEqual({ sessions: 0, messages: 0, chunks: 0, turns: 0 });
});

test("deleting a machine removes its workers, tokens, commands and chat", async () => {
  const t = newDeployment();
  const chat = await newChat(t);
  const owner = { serverSecret: SECRET, userId: chat.alice, machineId: chat.machine.machineId };
  await t.mutation(api.workers.issueToken, owner);
  await t.mutation(api.commands.create, { ...owner, kind: "mkdir", arguments: { path: "a", parents: false, url: null, cursor: null } });
  await t.mutation(api.chat.sendMessage, { ...chat.owner, chatSessionId: chat.session.chatSessionId, content: "hi" });
  await t.mutation(api.machines.remove, owner);
  const left = await t.run(async (ctx) =>
    Promise.all(
      (["machines", "workers", "workerTokens", "commands", "chatSessions", "chatMessages", "openTurns"] as const).map(
        async (table) => (await ctx.db.query(table).collect()).length,
      ),
    ),
  );
  expect(left).toEqual([0, 0, 0, 0, 0, 0, 0]);
});
