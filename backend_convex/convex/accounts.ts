/** Accounts of the web app. Passwords arrive already hashed (argon2, by the web server). */
import { v } from "convex/values";
import { serverMutation, serverQuery } from "./lib/functions";
import { requireUser, userByName } from "./lib/access";
import { fail } from "./lib/errors";
import { newId } from "./lib/ids";
import { MAX_USERS } from "./lib/limits";
import { cutPage, pageLimit, pageStart } from "./lib/paging";
import { userRecord } from "./lib/records";
import { userRecord as userValidator } from "./lib/validators";

const USERNAME_TAKEN = "That username is taken. Choose another one.";

/** Create an account; a taken username is a Conflict. */
export const create = serverMutation({
  args: { username: v.string(), passwordHash: v.string() },
  returns: userValidator,
  handler: async (ctx, { username, passwordHash }) => {
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
export const find = serverQuery({
  args: { username: v.string() },
  returns: v.union(v.object({ user: userValidator, passwordHash: v.string() }), v.null()),
  handler: async (ctx, { username }) => {
    const user = await userByName(ctx, username);
    return user === null ? null : { user: userRecord(user), passwordHash: user.passwordHash };
  },
});

/** An account by ID. */
export const get = serverQuery({
  args: { userId: v.string() },
  returns: userValidator,
  handler: async (ctx, { userId }) => {
    return userRecord(await requireUser(ctx, userId));
  },
});

/** How many accounts exist, counted up to MAX_USERS (zero means first run). */
export const count = serverQuery({
  args: {},
  returns: v.number(),
  handler: async (ctx) => {
    return (await ctx.db.query("users").take(MAX_USERS)).length;
  },
});

/** A page of the accounts, oldest first (the first is the one the setup link created). */
export const listPage = serverQuery({
  args: { afterUserId: v.optional(v.string()), limit: v.number() },
  returns: v.object({ users: v.array(userValidator), hasMore: v.boolean() }),
  handler: async (ctx, { afterUserId, limit }) => {
    const after = (await pageStart(ctx, "users", afterUserId, () => true))?._creationTime;
    const oldestFirst = ctx.db
      .query("users")
      .withIndex("by_creation_time", (q) => (after === undefined ? q : q.gt("_creationTime", after)));
    const { items, hasMore } = await cutPage(oldestFirst, pageLimit(limit), () => 1);
    return { users: items.map(userRecord), hasMore };
  },
});

/** Replace the account's password hash (computed by the web server). */
export const setPasswordHash = serverMutation({
  args: { userId: v.string(), passwordHash: v.string() },
  returns: v.null(),
  handler: async (ctx, { userId, passwordHash }) => {
    const user = await requireUser(ctx, userId);
    await ctx.db.patch(user._id, { passwordHash });
    return null;
  },
});
