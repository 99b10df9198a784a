/** Push subscriptions and settings: server secret, ownership, limits; waiting requests across machines. */
import { expect, test, vi } from "vitest";
import { api } from "../convex/_generated/api";
import { MAX_SUBSCRIPTIONS_PER_USER, NO_SUBSCRIPTION, TOO_MANY_SUBSCRIPTIONS } from "../convex/notifications";
import { MAX_FINISHED, shortLine } from "../convex/lib/inbox";
import { newChat, newDeployment, newUser, refused, SECRET } from "./setup";

const sub = (n: number) => ({ endpoint: `https://push.example/${n}`, p256dh: "BKEY", auth: "AUTH" });

test("only the web server may read or write subscriptions", async () => {
  const t = newDeployment();
  const alice = await newUser(t, "alice");
  await refused(t.mutation(api.notifications.subscribe, { serverSecret: "wrong", userId: alice, ...sub(1) }), "AuthenticationFailed");
  await refused(t.query(api.notifications.listWaiting, { serverSecret: "wrong", userId: null }), "AuthenticationFailed");
});

test("a subscription belongs to its user, moves with its endpoint and is bounded", async () => {
  const t = newDeployment();
  const alice = await newUser(t, "alice");
  const bob = await newUser(t, "bob");
  const owner = { serverSecret: SECRET, userId: alice };
  await t.mutation(api.notifications.subscribe, { ...owner, ...sub(1) });
  await refused(t.mutation(api.notifications.unsubscribe, { serverSecret: SECRET, userId: bob, endpoint: sub(1).endpoint }), "NotFound", NO_SUBSCRIPTION);
  await t.mutation(api.notifications.subscribe, { serverSecret: SECRET, userId: bob, ...sub(1) });
  expect(await t.query(api.notifications.listSubscriptions, owner)).toEqual([]);
  for (let n = 0; n < MAX_SUBSCRIPTIONS_PER_USER; n++) await t.mutation(api.notifications.subscribe, { ...owner, ...sub(100 + n) });
  await refused(t.mutation(api.notifications.subscribe, { ...owner, ...sub(999) }), "Conflict", TOO_MANY_SUBSCRIPTIONS);
  await refused(t.mutation(api.notifications.subscribe, { ...owner, ...sub(5), endpoint: "" }), "InvalidInput");
  await t.mutation(api.notifications.drop, { serverSecret: SECRET, endpoint: sub(100).endpoint });
  expect(await t.query(api.notifications.listSubscriptions, owner)).toHaveLength(MAX_SUBSCRIPTIONS_PER_USER - 1);
});

test("settings default to every event and are replaced whole", async () => {
  const t = newDeployment();
  const alice = await newUser(t, "alice");
  const owner = { serverSecret: SECRET, userId: alice };
  expect(await t.query(api.notifications.getSettings, owner)).toMatchObject({ quietStart: null, timeZone: "UTC" });
  const settings = { events: ["permission"], quietStart: "22:00", quietEnd: "07:00", timeZone: "Europe/Berlin" };
  await t.mutation(api.notifications.saveSettings, { ...owner, settings });
  expect(await t.query(api.notifications.getSettings, owner)).toEqual(settings);
  await refused(t.query(api.notifications.getSettings, { ...owner, userId: "usr_nobody" }), "NotFound");
});

test("waiting permission requests are listed per user and for everyone", async () => {
  const t = newDeployment();
  const { alice, owner, token, session } = await newChat(t);
  const message = await t.mutation(api.chat.sendMessage, { ...owner, chatSessionId: session.chatSessionId, content: "hi" });
  const reply = await t.mutation(api.chatMachine.claimMessage, { ...token, messageId: message.messageId });
  await t.mutation(api.chatMachine.recordPermission, { ...token, messageId: reply.messageId, agentRequestId: "p1", tool: "bash", description: "ls" });
  const { waiting: [waiting], next } = await t.query(api.notifications.listWaiting, { serverSecret: SECRET, userId: null });
  expect(next).toBeNull();
  expect(waiting).toMatchObject({ userId: alice, machineName: "laptop", workerDirectory: "repo", request: { tool: "bash", status: "pending" } });
  const bob = await newUser(t, "bob");
  expect(await t.query(api.notifications.listWaiting, { serverSecret: SECRET, userId: bob })).toEqual({ waiting: [], next: null });
});

test("open turns list unfinished messages of every machine with its status", async () => {
  const t = newDeployment();
  const { owner, token, session } = await newChat(t);
  const message = await t.mutation(api.chat.sendMessage, { ...owner, chatSessionId: session.chatSessionId, content: "hi" });
  const server = { serverSecret: SECRET };
  expect(await t.query(api.notifications.listOpenTurns, server)).toMatchObject([{ machineOnline: true, message: { status: "pending" } }]);
  await t.mutation(api.machines.goOffline, token);
  const [turn] = await t.query(api.notifications.listOpenTurns, server);
  expect(turn).toMatchObject({ machineOnline: false, machineName: "laptop", message: { messageId: message.messageId } });
  await refused(t.query(api.notifications.listOpenTurns, { serverSecret: "wrong" }), "AuthenticationFailed");
});

test("finished replies: server only, bounded, newest first, gone with their worker", async () => {
  vi.useFakeTimers();
  try {
    const t = newDeployment();
    const { alice, owner, token, session, worker } = await newChat(t);
    const server = { serverSecret: SECRET, userId: alice };
    await refused(t.query(api.notifications.listFinished, { ...server, serverSecret: "wrong", limit: 5 }), "AuthenticationFailed");
    await refused(t.mutation(api.notifications.markSeen, { ...server, serverSecret: "wrong", until: 0 }), "AuthenticationFailed");
    for (let n = 0; n <= MAX_FINISHED; n++) {
      const message = await t.mutation(api.chat.sendMessage, { ...owner, chatSessionId: session.chatSessionId, content: `q${n}` });
      const reply = await t.mutation(api.chatMachine.claimMessage, { ...token, messageId: message.messageId });
      await t.mutation(api.chatMachine.completeMessage, { ...token, messageId: reply.messageId, content: `a${n}` });
    }
    const listed = await t.query(api.notifications.listFinished, { ...server, limit: 1000 });
    expect(listed).toHaveLength(MAX_FINISHED);
    expect(listed[0]).toMatchObject({ preview: `a${MAX_FINISHED}`, status: "completed", machineName: "laptop" });
    await t.mutation(api.workers.remove, { ...owner, workerId: worker.workerId });
    expect(await t.query(api.notifications.listFinished, { ...server, limit: 5 })).toEqual([]);
    await t.finishAllScheduledFunctions(vi.runAllTimers);
    expect(await t.run(async (ctx) => (await ctx.db.query("finishedReplies").take(100)).length)).toBe(0);
  } finally {
    vi.useRealTimers();
  }
});

test("a preview is one line of at most 80 characters", () => {
  expect(shortLine("  two\n\tlines ")).toBe("two lines");
  expect(shortLine("é".repeat(200))).toBe("é".repeat(79) + "…");
});
