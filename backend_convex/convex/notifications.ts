/**
 * Web Push subscriptions and notification settings per user, and the
 * permission requests waiting for users (the notifier and the inbox read them).
 *
 * The web server validates a subscription (https endpoint, key sizes) and the
 * settings in Python before it calls these; only it can call them (server secret).
 */
import type { QueryCtx } from "./_generated/server";
import { v } from "convex/values";
import { owner, serverMutation, serverQuery } from "./lib/functions";
import { ofUser, reachable, requireUser } from "./lib/access";
import { fail } from "./lib/errors";
import { MAX_OPEN_TURNS } from "./lib/limits";
import { cachedLookup, MAX_FINISHED, place, placeFields, sessionPlace, waitingQuery } from "./lib/inbox";
import {
  finishedReplyRecord,
  notificationSettingsRecord,
  openTurnMessage,
  patched,
  permissionRecord,
  pushSubscriptionRecord as subscriptionRecord,
  storedValues,
} from "./lib/records";
import {
  finishedReplyRecord as finishedReplyValidator,
  notificationSettingsRecord as settingsValidator,
  openTurnMessage as openTurnMessageValidator,
  permissionRecord as permissionValidator,
  pushSubscriptionRecord as subscriptionValidator,
} from "./lib/validators";

/** A user may enable this many browsers and phones (as in domain/notifications.py). */
export const MAX_SUBSCRIPTIONS_PER_USER = 20;
export const NO_SUBSCRIPTION = "No such push subscription.";
export const TOO_MANY_SUBSCRIPTIONS =
  `You have ${MAX_SUBSCRIPTIONS_PER_USER} devices with notifications already. Turn them off on one first.`;
const MAX_FIELD = 1024;


const DEFAULT_EVENTS = ["job_failed", "long_reply", "machine_offline", "permission"];

async function subscriptionAt(ctx: QueryCtx, endpoint: string) {
  return await ctx.db
    .query("pushSubscriptions")
    .withIndex("by_endpoint", (q) => q.eq("endpoint", endpoint))
    .first();
}

/** Store (or renew, by endpoint) a browser's subscription for the user. */
export const subscribe = serverMutation({
  args: { ...owner, endpoint: v.string(), p256dh: v.string(), auth: v.string() },
  returns: subscriptionValidator,
  handler: async (ctx, { userId, endpoint, p256dh, auth }) => {
    if ([endpoint, p256dh, auth].some((field) => field.length === 0 || field.length > MAX_FIELD)) {
      fail("InvalidInput", "The push subscription is not valid.");
    }
    await requireUser(ctx, userId);
    const mine = await ofUser(ctx, "pushSubscriptions", userId).take(MAX_SUBSCRIPTIONS_PER_USER + 1);
    if (mine.filter((s) => s.endpoint !== endpoint).length >= MAX_SUBSCRIPTIONS_PER_USER) {
      fail("Conflict", TOO_MANY_SUBSCRIPTIONS);
    }
    const previous = await subscriptionAt(ctx, endpoint);
    if (previous === null) {
      const id = await ctx.db.insert("pushSubscriptions", { endpoint, userId, p256dh, auth, createdAt: Date.now() });
      return subscriptionRecord((await ctx.db.get(id))!);
    }
    // One browser, one endpoint: whoever enabled it last receives its notifications.
    return subscriptionRecord(await patched(ctx, previous, { userId, p256dh, auth }));
  },
});

/** Forget one of the user's subscriptions; another user's is "not found". */
export const unsubscribe = serverMutation({
  args: { ...owner, endpoint: v.string() },
  returns: v.null(),
  handler: async (ctx, { userId, endpoint }) => {
    const found = reachable(await subscriptionAt(ctx, endpoint), (subscription) => subscription.userId === userId, NO_SUBSCRIPTION);
    await ctx.db.delete(found._id);
    return null;
  },
});

/** The user's subscriptions, oldest first. */
export const listSubscriptions = serverQuery({
  args: owner,
  returns: v.array(subscriptionValidator),
  handler: async (ctx, { userId }) => {
    const found = await ofUser(ctx, "pushSubscriptions", userId).take(MAX_SUBSCRIPTIONS_PER_USER);
    return found.map(subscriptionRecord);
  },
});

/** Forget a subscription the push service says is gone; nothing if already gone. */
export const drop = serverMutation({
  args: { endpoint: v.string() },
  returns: v.null(),
  handler: async (ctx, { endpoint }) => {
    const found = await subscriptionAt(ctx, endpoint);
    if (found !== null) await ctx.db.delete(found._id);
    return null;
  },
});

/** The user's settings, or the defaults (every event, no quiet hours, UTC). */
export const getSettings = serverQuery({
  args: owner,
  returns: settingsValidator,
  handler: async (ctx, { userId }) => {
    await requireUser(ctx, userId);
    const found = await ofUser(ctx, "notificationSettings", userId).first();
    if (found === null) return { events: DEFAULT_EVENTS, quietStart: null, quietEnd: null, timeZone: "UTC" };
    return notificationSettingsRecord(found);
  },
});

/** Replace the user's settings (checked by the web server). */
export const saveSettings = serverMutation({
  args: { ...owner, settings: settingsValidator },
  returns: v.null(),
  handler: async (ctx, { userId, settings }) => {
    await requireUser(ctx, userId);
    const fields = { ...storedValues(settings), userId };
    const found = await ofUser(ctx, "notificationSettings", userId).first();
    if (found === null) await ctx.db.insert("notificationSettings", fields);
    else await ctx.db.replace(found._id, fields);
    return null;
  },
});

/**
 * A page of the pending permission requests of one user (or of every user),
 * machine by machine (lib/inbox.ts waitingPage): an edit's diff may hold
 * MAX_DIFF_BYTES, so a page is cut by size as well as by count. The reader
 * reads on from `next` until it is null and sorts the whole list by age.
 */
export const listWaiting = waitingQuery("permissionRequests", permissionValidator, permissionRecord);

const openTurnValidator = v.object({
  userId: v.string(),
  message: openTurnMessageValidator,
  ...placeFields,
  machineOnline: v.boolean(),
});

/**
 * Every unfinished message of every user (the oldest MAX_OPEN_TURNS), with its
 * machine's status, oldest first. It reads the small `openTurns` documents, never
 * a message and its text, and each session, worker and machine once.
 */
export const listOpenTurns = serverQuery({
  args: {},
  returns: v.array(openTurnValidator),
  handler: async (ctx) => {
    const lookup = cachedLookup(ctx);
    const turns = [];
    for (const turn of await ctx.db.query("openTurns").withIndex("by_timestamp").take(MAX_OPEN_TURNS)) {
      const found = await sessionPlace(ctx, turn.chatSessionId, lookup);
      if (found === null) continue;
      const { session, worker, machine } = found;
      turns.push({
        userId: session.userId,
        message: openTurnMessage(turn),
        ...place(machine, worker),
        machineOnline: machine.status === "online",
      });
    }
    return turns;
  },
});

const finishedValidator = v.object({ ...finishedReplyValidator.fields, ...placeFields });

/**
 * The user's replies that ended after their inbox mark, newest first, at most `limit`
 * (MAX_FINISHED): one index range of small rows and three lookups each, no reply text.
 */
export const listFinished = serverQuery({
  args: { ...owner, limit: v.number() },
  returns: v.array(finishedValidator),
  handler: async (ctx, { userId, limit }) => {
    const mark = (await ofUser(ctx, "inboxSeen", userId).first())?.seenAt ?? -1;
    const rows = await ctx.db
      .query("finishedReplies")
      .withIndex("by_userId_and_finishedAt", (q) => q.eq("userId", userId).gt("finishedAt", mark))
      .order("desc")
      .take(Math.max(0, Math.min(limit, MAX_FINISHED)));
    const found = [];
    for (const row of rows) {
      // A reply of a session, worker or machine being deleted is not listed (access.ts).
      const where = await sessionPlace(ctx, row.chatSessionId);
      if (where === null || where.session.userId !== userId) continue;
      found.push({ ...finishedReplyRecord(row), ...place(where.machine, where.worker) });
    }
    return found;
  },
});

/** Move the user's inbox mark to `until`: forward only, and never past now (seen_until). */
export const markSeen = serverMutation({
  args: { ...owner, until: v.number() },
  returns: v.null(),
  handler: async (ctx, { userId, until }) => {
    await requireUser(ctx, userId);
    const mark = Math.min(until, Date.now());
    const found = await ofUser(ctx, "inboxSeen", userId).first();
    if (found === null) await ctx.db.insert("inboxSeen", { userId, seenAt: mark });
    else if (mark > found.seenAt) await ctx.db.patch(found._id, { seenAt: mark });
    return null;
  },
});
