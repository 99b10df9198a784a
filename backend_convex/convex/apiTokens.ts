/**
 * User API tokens: how a script signs in to the web server's user API.
 *
 * Only the web server calls these (with the deployment's server secret). It
 * draws the 256-bit secret, hashes it with SHA-256 and hands over the hash
 * only; the token's text `oat_<tokenId>:sec_<secret>` never reaches the
 * deployment. SHA-256 rather than argon2, because the secret is uniformly
 * random (see lib/auth.ts) and is checked on every API request. The rules and
 * sentences match `orchestrator/domain/api_tokens.py`.
 */
import { v } from "convex/values";
import { serverMutation, serverQuery } from "./lib/functions";
import { constantTimeEqual } from "./lib/auth";
import { byPublicId, ofUser, reachable, requireUser } from "./lib/access";
import { fail } from "./lib/errors";
import { newId } from "./lib/ids";
import { validateName } from "./lib/rules";
import { apiTokenRecord as record } from "./lib/records";
import { apiTokenRecord as apiTokenValidator } from "./lib/validators";

export const MAX_API_TOKENS_PER_USER = 50;
/** A use is written back at most this often per token, so a busy script costs reads only. */
export const LAST_USED_RESOLUTION_MS = 60_000;
export const WRONG_API_TOKEN = "This API token is wrong or was revoked. Create a new one under Settings.";
export const NO_API_TOKEN = "No such API token.";
export const TOO_MANY_API_TOKENS = `You have ${MAX_API_TOKENS_PER_USER} API tokens. Revoke one before creating another.`;

/** Store a new token of the user (its secret's hash only); at most MAX_API_TOKENS_PER_USER. */
export const create = serverMutation({
  args: { userId: v.string(), name: v.string(), secretHash: v.string() },
  returns: apiTokenValidator,
  handler: async (ctx, { userId, name, secretHash }) => {
    const cleaned = validateName(name, "Token name");
    await requireUser(ctx, userId);
    const existing = await ofUser(ctx, "apiTokens", userId).take(MAX_API_TOKENS_PER_USER);
    if (existing.length >= MAX_API_TOKENS_PER_USER) fail("Conflict", TOO_MANY_API_TOKENS);
    const id = await ctx.db.insert("apiTokens", {
      tokenId: await newId(ctx, "api_token"),
      userId,
      name: cleaned,
      secretHash,
      createdAt: Date.now(),
    });
    return record((await ctx.db.get(id))!);
  },
});

/** The user's tokens, oldest first, without their hashes. */
export const list = serverQuery({
  args: { userId: v.string() },
  returns: v.array(apiTokenValidator),
  handler: async (ctx, { userId }) => {
    const found = await ofUser(ctx, "apiTokens", userId).take(MAX_API_TOKENS_PER_USER);
    return found.map(record);
  },
});

/** Delete one of the user's tokens; NotFound for an unknown one or another user's. */
export const revoke = serverMutation({
  args: { userId: v.string(), tokenId: v.string() },
  returns: v.null(),
  handler: async (ctx, { userId, tokenId }) => {
    const found = reachable(await byPublicId(ctx, "apiTokens", tokenId), (token) => token.userId === userId, NO_API_TOKEN);
    await ctx.db.delete(found._id);
    return null;
  },
});

/** Whose token this is, noting its use; "wrong or revoked" alike for an unknown id and a wrong hash. */
export const authenticate = serverMutation({
  args: { tokenId: v.string(), secretHash: v.string() },
  returns: v.string(),
  handler: async (ctx, { tokenId, secretHash }) => {
    const found = await byPublicId(ctx, "apiTokens", tokenId);
    const stored = found?.secretHash ?? "0".repeat(secretHash.length);
    if (!constantTimeEqual(secretHash, stored) || found === null) fail("AuthenticationFailed", WRONG_API_TOKEN);
    const now = Date.now();
    if (found.lastUsedAt === undefined || now - found.lastUsedAt >= LAST_USED_RESOLUTION_MS) {
      await ctx.db.patch(found._id, { lastUsedAt: now });
    }
    return found.userId;
  },
});
