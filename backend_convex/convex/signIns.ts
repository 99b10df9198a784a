/**
 * Sign-ins: which browsers are signed in to an account, so a session cookie can
 * be ended on the server (sign out, sign out everywhere, a new password).
 */
import type { QueryCtx } from "./_generated/server";
import type { Doc } from "./_generated/dataModel";
import { v } from "convex/values";
import { owner, serverMutation, serverQuery } from "./lib/functions";
import { byPublicId, ofUser, requireUser } from "./lib/access";
import { MAX_SIGN_INS_PER_USER } from "./lib/limits";

/** The user's sign-in with this ID, or null (someone else's counts as absent). */
async function ownSignIn(ctx: QueryCtx, userId: string, signInId: string): Promise<Doc<"signIns"> | null> {
  const found = await byPublicId(ctx, "signIns", signInId);
  return found !== null && found.userId === userId ? found : null;
}

/** Record a sign-in; beyond MAX_SIGN_INS_PER_USER the user's oldest ones end. */
export const add = serverMutation({
  args: { ...owner, signInId: v.string() },
  returns: v.null(),
  handler: async (ctx, { userId, signInId }) => {
    await requireUser(ctx, userId);
    await ctx.db.insert("signIns", { signInId, userId, createdAt: Date.now() });
    const newestFirst = await ofUser(ctx, "signIns", userId).order("desc").take(MAX_SIGN_INS_PER_USER + 10);
    for (const old of newestFirst.slice(MAX_SIGN_INS_PER_USER)) await ctx.db.delete(old._id);
    return null;
  },
});

/** Whether this sign-in of the user exists and has not ended. */
export const has = serverQuery({
  args: { ...owner, signInId: v.string() },
  returns: v.boolean(),
  handler: async (ctx, { userId, signInId }) => {
    return (await ownSignIn(ctx, userId, signInId)) !== null;
  },
});

/** End one sign-in of the user; an unknown one is already ended. */
export const end = serverMutation({
  args: { ...owner, signInId: v.string() },
  returns: v.null(),
  handler: async (ctx, { userId, signInId }) => {
    const found = await ownSignIn(ctx, userId, signInId);
    if (found !== null) await ctx.db.delete(found._id);
    return null;
  },
});

/** End every sign-in of the user except `keep`; returns how many ended. */
export const endOthers = serverMutation({
  args: { ...owner, keep: v.union(v.string(), v.null()) },
  returns: v.number(),
  handler: async (ctx, { userId, keep }) => {
    const all = await ofUser(ctx, "signIns", userId).take(MAX_SIGN_INS_PER_USER + 10);
    let ended = 0;
    for (const signIn of all) {
      if (signIn.signInId === keep) continue;
      await ctx.db.delete(signIn._id);
      ended += 1;
    }
    return ended;
  },
});
