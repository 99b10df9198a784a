/** Accounts of the web app. Passwords arrive already hashed (argon2, by the web server). */
import { mutation, query } from "./_generated/server";
import { v } from "convex/values";
import { requireUser, userByName } from "./lib/access";
import { requireServer } from "./lib/auth";
import { fail } from "./lib/errors";
import { newId } from "./lib/ids";
import { MAX_USERS } from "./lib/limits";
import { cutPage, pageLimit, pageStart } from "./lib/paging";
import { userRecord } from "./lib/records";
import { serverCaller, userRecord as userValidator } from "./lib/validators";

const USERNAME_TAKEN = "That username is taken. Choose another one.";

/** Create an account; a taken username is a Conflict. */
export const create = mutation({
  args: { ...serverCaller, username: v.string(), passwordHash: v.string() },
  returns: userValidator,
  handler: async (ctx, { serverSecret, username, passwordHash }) => {
    requireServer(serverSecret);
    const existing = await userByName(ctx, username);
    if (existing !== null) fail("Conflict", USERNAME_TAKEN);
    const id = await ctx.db.insert("users", {
      userId: await newId(ctx, "user"),
      username,
      passwordHash,
      createdAt: Date.now(),
    });
    return userRecord((await ctx.db.get(id))!);
  },
});

/** The account with this username and its password hash, or null. */
export const find = query({
  args: { ...serverCaller, username: v.string() },
  returns: v.union(v.object({ user: userValidator, passwordHash: v.string() }), v.null()),
  handler: async (ctx, { serverSecret, username }) => {
    requireServer(serverSecret);
    const user = await userByName(ctx, username);
    return user === null ? null : { user: userRecord(user), passwordHash: user.passwordHash };
  },
});

/** An account by ID. */
export const get = query({
  args: { ...serverCaller, userId: v.string() },
  returns: userValidator,
  handler: async (ctx, { serverSecret, userId }) => {
    requireServer(serverSecret);
    return userRecord(await requireUser(ctx, userId));
  },
});

/** How many accounts exist, counted up to MAX_USERS (zero means first run). */
export const count = query({
  args: { ...serverCaller },
  returns: v.number(),
  handler: async (ctx, { serverSecret }) => {
    requireServer(serverSecret);
    return (await ctx.db.query("users").take(MAX_USERS)).length;
  },
});

/** A page of the accounts, oldest first (the first is the one the setup link created). */
export const listPage = query({
  args: { ...serverCaller, afterUserId: v.optional(v.string()), limit: v.number() },
  returns: v.object({ users: v.array(userValidator), hasMore: v.boolean() }),
  handler: async (ctx, { serverSecret, afterUserId, limit }) => {
    requireServer(serverSecret);
    const after = (await pageStart(ctx, "users", afterUserId, () => true))?._creationTime;
    const oldestFirst = ctx.db
      .query("users")
      .withIndex("by_creation_time", (q) => (after === undefined ? q : q.gt("_creationTime", after)));
    const { items, hasMore } = await cutPage(oldestFirst, pageLimit(limit), () => 1);
    return { users: items.map(userRecord), hasMore };
  },
});

/** Replace the account's password hash (computed by the web server). */
export const setPasswordHash = mutation({
  args: { ...serverCaller, userId: v.string(), passwordHash: v.string() },
  returns: v.null(),
  handler: async (ctx, { serverSecret, userId, passwordHash }) => {
    requireServer(serverSecret);
    const user = await requireUser(ctx, userId);
    await ctx.db.patch(user._id, { passwordHash });
    return null;
  },
});
