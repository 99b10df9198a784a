/** Reads of long lists of large documents: each call cut by count and by size, every item reached once. */
import { afterEach, expect, test, vi } from "vitest";
import { getDocumentSize, type Value } from "convex/values";
import { api, internal } from "../convex/_generated/api";
import { BYTES_BUDGET } from "../convex/lib/cascade";
import { MAX_PAGE, PAGE_BYTES } from "../convex/lib/paging";
import { MAX_DIFF_BYTES } from "../convex/lib/rules";
import { ANSWERED_BYTES } from "../convex/questions";
import { newChat, newDeployment, newMachine, SECRET, type Deployment, type Token } from "./setup";

const DIFF = "+".repeat(MAX_DIFF_BYTES - 100);

afterEach(() => {
  vi.useRealTimers();
});
const size = (value: object) => getDocumentSize(value as Record<string, Value>);

/** A streaming reply of a new session of `token`'s machine (the worker of `chat`, or a new one). */
async function streaming(t: Deployment, owner: { serverSecret: string; userId: string }, token: Token, workerId: string) {
  const session = await t.mutation(api.chat.startSession, { ...owner, workerId, model: "fake/small" });
  const asked = await t.mutation(api.chat.sendMessage, { ...owner, chatSessionId: session.chatSessionId, content: "hi" });
  const reply = await t.mutation(api.chatMachine.claimMessage, { ...token, messageId: asked.messageId });
  return { session, reply };
}

/** Alice's chat with a streaming reply in a new session of her worker. */
async function streamingChat(t: Deployment) {
  const { owner, token, worker } = await newChat(t);
  return { owner, token, ...(await streaming(t, owner, token, worker.workerId)) };
}

/** The agent of reply `messageId` asks to edit a.txt with a diff of nearly MAX_DIFF_BYTES (request `p<n>`). */
/** `count` edit requests the agent makes during the reply, in order. */
async function askEdits(t: Deployment, token: Token, messageId: string, count: number) {
  const made = [];
  for (let n = 0; n < count; n++) {
    made.push(
      await t.mutation(api.chatMachine.recordPermission, {
        ...token,
        messageId,
        agentRequestId: `p${n}`,
        tool: "edit",
        description: "edit a.txt",
        file: "a.txt",
        diff: DIFF,
        diffSize: DIFF.length,
      }),
    );
  }
  return made;
}

async function secondMachine(t: Deployment, owner: { serverSecret: string; userId: string }) {
  const { machine, token } = await newMachine(t, owner.userId, "desktop", true);
  const added = await t.mutation(api.workers.add, { ...owner, machineId: machine.machineId, directory: "repo2", name: null });
  await t.mutation(api.workers.updateModels, { ...token, workerId: added.workerId, models: ["fake/small"] });
  return { token, workerId: added.workerId };
}

test("waiting edits with long diffs are paged by size across machines, each once", async () => {
  const t = newDeployment();
  const { owner, token, worker } = await newChat(t);
  const other = await secondMachine(t, owner);
  const made: string[] = [];
  for (const [machineToken, workerId] of [
    [token, worker.workerId],
    [other.token, other.workerId],
  ] as const) {
    const { reply } = await streaming(t, owner, machineToken, workerId);
    made.push(...(await askEdits(t, machineToken, reply.messageId, 25)).map((request) => request.permissionId));
  }
  expect(made.length * DIFF.length).toBeGreaterThan(PAGE_BYTES);
  for (const userId of [owner.userId, null]) {
    const seen: string[] = [];
    let after = undefined;
    let pages = 0;
    do {
      const page: { waiting: Array<{ request: { permissionId: string } }>; next: { machine: number; request: number } | null } =
        await t.query(api.notifications.listWaiting, { serverSecret: SECRET, userId, after });
      expect(page.waiting.length).toBeLessThanOrEqual(MAX_PAGE);
      expect(size(page.waiting)).toBeLessThanOrEqual(PAGE_BYTES);
      seen.push(...page.waiting.map((w) => w.request.permissionId));
      after = page.next ?? undefined;
      pages++;
    } while (after !== undefined);
    expect(pages).toBeGreaterThan(1);
    expect(seen).toEqual(made);
  }
});

test("more than a page of waiting questions across machines is read whole, each once", async () => {
  const t = newDeployment();
  const { owner, token, worker } = await newChat(t);
  const other = await secondMachine(t, owner);
  const made: string[] = [];
  for (const [machineToken, workerId, count] of [
    [token, worker.workerId, MAX_PAGE],
    [other.token, other.workerId, 3],
  ] as const) {
    const { reply } = await streaming(t, owner, machineToken, workerId);
    for (let n = 0; n < count; n++) {
      const asked = await t.mutation(api.questions.recordQuestion, {
        ...machineToken,
        messageId: reply.messageId,
        agentRequestId: `q${n}`,
        questions: [{ header: "Pick", question: "Which?", options: [{ label: "A", description: "a" }], multiple: false, custom: true }],
      });
      made.push(asked.questionId);
    }
  }
  const seen: string[] = [];
  let after = undefined;
  do {
    const page: { waiting: Array<{ request: { questionId: string } }>; next: { machine: number; request: number } | null } =
      await t.query(api.questions.listWaiting, { serverSecret: SECRET, userId: owner.userId, after });
    expect(page.waiting.length).toBeLessThanOrEqual(MAX_PAGE);
    seen.push(...page.waiting.map((w) => w.request.questionId));
    after = page.next ?? undefined;
  } while (after !== undefined);
  expect(seen).toEqual(made);
});

test("a session's requests come a page at a time, cut by size; the rest from the page queries", async () => {
  const t = newDeployment();
  const { owner, token, session, reply } = await streamingChat(t);
  const made = (await askEdits(t, token, reply.messageId, 40)).map((request) => request.permissionId);
  const first = await t.query(api.questions.listRequests, { ...owner, chatSessionId: session.chatSessionId });
  expect(first.hasMorePermissions).toBe(true);
  expect(first.hasMoreQuestions).toBe(false);
  expect(size(first)).toBeLessThanOrEqual(PAGE_BYTES);
  const seen = first.permissions.map((p) => p.permissionId);
  let more = true;
  while (more) {
    const page = await t.query(api.chat.listPermissionsPage, {
      ...owner,
      chatSessionId: session.chatSessionId,
      all: true,
      afterPermissionId: seen[seen.length - 1],
      limit: MAX_PAGE,
    });
    expect(size(page)).toBeLessThanOrEqual(PAGE_BYTES);
    seen.push(...page.permissions.map((p) => p.permissionId));
    more = page.hasMore;
  }
  expect(seen).toEqual(made);
});

test("parts with large tool outputs are paged by size, in order, each once", async () => {
  const t = newDeployment();
  const { owner, token, session, reply } = await streamingChat(t);
  const output = "o".repeat(64 * 1024);
  for (let n = 0; n < 40; n++) {
    await t.mutation(api.parts.save, {
      ...token,
      messageId: reply.messageId,
      partId: `prt_${n}`,
      type: "tool",
      text: "",
      data: JSON.stringify({ type: "tool", state: { status: "completed", output } }),
    });
  }
  for (const messageId of [null, reply.messageId]) {
    const seen: number[] = [];
    let hasMore = true;
    let pages = 0;
    while (hasMore) {
      const page = await t.query(api.parts.listPage, {
        ...owner,
        chatSessionId: session.chatSessionId,
        messageId,
        afterPosition: seen.length ? seen[seen.length - 1] : undefined,
        limit: MAX_PAGE,
      });
      expect(size(page)).toBeLessThanOrEqual(PAGE_BYTES);
      seen.push(...page.parts.map((p) => p.position));
      hasMore = page.hasMore;
      pages++;
    }
    expect(pages).toBeGreaterThan(1);
    expect(seen).toEqual(Array.from({ length: 40 }, (_, n) => n + 1));
  }
});

test("a machine's work list holds the oldest answered edits that fit; the rest follow", async () => {
  const t = newDeployment();
  const { owner, token, session, reply } = await streamingChat(t);
  const made: string[] = [];
  for (const request of await askEdits(t, token, reply.messageId, 20)) {
    await t.mutation(api.chat.answerPermission, { ...owner, permissionId: request.permissionId, answer: "once" });
    made.push(request.permissionId);
  }
  const passed: string[] = [];
  for (;;) {
    const work = (await t.query(api.chatMachine.work, token)).find((w) => w.session.chatSessionId === session.chatSessionId)!;
    if (work.answeredPermissions.length === 0) break;
    expect(size(work.answeredPermissions)).toBeLessThanOrEqual(ANSWERED_BYTES + MAX_DIFF_BYTES);
    expect(work.answeredPermissions.length).toBeLessThan(made.length);
    for (const answered of work.answeredPermissions) {
      await t.mutation(api.chatMachine.resolvePermission, { ...token, permissionId: answered.permissionId });
      passed.push(answered.permissionId);
    }
  }
  expect(passed).toEqual(made);
});

test("a reply's end expires more waiting edits than one mutation may read, the rest in a later batch", async () => {
  vi.useFakeTimers();
  const t = newDeployment();
  const { token, reply } = await streamingChat(t);
  // More than the ending mutation's read budget: each edit is read once and written once.
  const count = Math.ceil(BYTES_BUDGET / (2 * MAX_DIFF_BYTES)) + 20;
  await askEdits(t, token, reply.messageId, count);
  const statuses = () =>
    t.run(async (ctx) => {
      const rows = await ctx.db.query("permissionRequests").collect();
      return rows.reduce<Record<string, number>>((seen, row) => ({ ...seen, [row.status]: (seen[row.status] ?? 0) + 1 }), {});
    });
  await t.mutation(api.chatMachine.completeMessage, { ...token, messageId: reply.messageId, content: "done" });
  const inline = await statuses();
  expect(inline.expired).toBeGreaterThan(0);
  expect(inline.pending).toBeGreaterThan(0);
  await t.finishAllScheduledFunctions(vi.runAllTimers);
  expect(await statuses()).toEqual({ expired: count });
});

test("a stream resumed from far behind reads its events a page at a time, cut by size, each once and in order", async () => {
  const t = newDeployment();
  const { owner, token, session, reply } = await streamingChat(t);
  const output = "o".repeat(300_000);
  for (let n = 0; n < 30; n++) {
    const data = JSON.stringify({ type: "tool", state: { status: "completed", output } });
    await t.mutation(api.parts.save, { ...token, messageId: reply.messageId, partId: `prt_${n}`, type: "tool", text: "", data });
    await t.mutation(api.parts.appendText, {
      ...token, messageId: reply.messageId, partId: "prt_text", kind: "text", offset: n, text: "x",
    });
  }
  const seen: number[] = [];
  let after = 0;
  for (;;) {
    const page = await t.query(api.parts.eventsAfter, { ...owner, chatSessionId: session.chatSessionId, afterSequence: after });
    const events = [...page.chunks, ...page.parts];
    if (events.length === 0) break;
    expect(size(page)).toBeLessThanOrEqual(PAGE_BYTES + 400_000);
    const sequences = events.map((e) => e.sequence).sort((a, b) => a - b);
    seen.push(...sequences);
    after = sequences[sequences.length - 1];
  }
  expect(seen.length).toBe(60);
  expect(new Set(seen).size).toBe(60);
  expect(seen).toEqual([...seen].sort((a, b) => a - b));
});

test("a reader's chunk cursor returns the chunks that fit a page by size, then the rest, each once and in order", async () => {
  const t = newDeployment();
  const { owner, token, session, reply } = await streamingChat(t);
  const chunk = "€".repeat(64_000); // the longest chunk, 3 bytes a character
  for (let n = 0; n < 20; n++) await t.mutation(api.chatMachine.appendChunk, { ...token, messageId: reply.messageId, text: chunk });
  const seen: number[] = [];
  let after = 0;
  let pages = 0;
  for (;;) {
    const page = await t.query(api.chat.chunksAfter, { ...owner, chatSessionId: session.chatSessionId, afterSequence: after });
    if (page.length === 0) break;
    expect(size({ page })).toBeLessThanOrEqual(PAGE_BYTES);
    seen.push(...page.map((c) => c.sequence));
    after = page[page.length - 1].sequence;
    pages++;
  }
  expect(pages).toBeGreaterThan(1);
  expect(seen).toHaveLength(20);
  expect(seen).toEqual([...new Set(seen)].sort((a, b) => a - b));
});

test("the open-turns backfill gives every unfinished message its turn, page by page, and can run again", async () => {
  vi.useFakeTimers();
  const t = newDeployment();
  const { owner, token, session } = await newChat(t);
  const long = "€".repeat(100_000); // the longest message, 3 bytes a character
  const asked = [];
  for (let n = 0; n < 12; n++) {
    asked.push(await t.mutation(api.chat.sendMessage, { ...owner, chatSessionId: session.chatSessionId, content: long }));
  }
  const reply = await t.mutation(api.chatMachine.claimMessage, { ...token, messageId: asked[0].messageId });
  await t.mutation(api.chatMachine.completeMessage, { ...token, messageId: reply.messageId, content: "done" });
  const turns = () =>
    t.run(async (ctx) => (await ctx.db.query("openTurns").collect()).map((turn) => [turn.messageId, turn.status]).sort());
  const expected = await turns();
  expect(expected.length).toBe(11);
  // As before the table was deployed: no turns at all.
  await t.run(async (ctx) => {
    for (const turn of await ctx.db.query("openTurns").collect()) await ctx.db.delete(turn._id);
  });
  const first = await t.mutation(internal.migrations.backfillOpenTurns, {});
  expect(first.done).toBe(false);
  await t.finishAllScheduledFunctions(vi.runAllTimers);
  expect(await turns()).toEqual(expected);
  await t.mutation(internal.migrations.backfillOpenTurns, {});
  await t.finishAllScheduledFunctions(vi.runAllTimers);
  expect(await turns()).toEqual(expected);
}, 60_000);
