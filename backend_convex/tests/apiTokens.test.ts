/** User API tokens: stored as a hash, checked, noted when used, revoked by their owner only. */
import { describe, expect, test } from "vitest";
import { api } from "../convex/_generated/api";
import { MAX_API_TOKENS_PER_USER, NO_API_TOKEN, WRONG_API_TOKEN } from "../convex/apiTokens";
import { newDeployment, newUser, refused, SECRET } from "./setup";

const HASH = "a".repeat(64);

describe("API tokens", () => {
  test("a token authenticates its owner with the right hash only, and notes the use", async () => {
    const t = newDeployment();
    const alice = await newUser(t, "alice");
    const token = await t.mutation(api.apiTokens.create, {
      serverSecret: SECRET,
      userId: alice,
      name: " ci ",
      secretHash: HASH,
    });
    expect(token).toMatchObject({ name: "ci", userId: alice, lastUsedAt: null });
    expect(token.tokenId).toMatch(/^oat_/);
    const check = (secretHash: string) =>
      t.mutation(api.apiTokens.authenticate, { serverSecret: SECRET, tokenId: token.tokenId, secretHash });
    expect(await check(HASH)).toBe(alice);
    await refused(check("b".repeat(64)), "AuthenticationFailed", WRONG_API_TOKEN);
    const [listed] = await t.query(api.apiTokens.list, { serverSecret: SECRET, userId: alice });
    expect(listed.lastUsedAt).not.toBeNull();
    expect(JSON.stringify(listed)).not.toContain(HASH);
  });

  test("another user cannot revoke a token; a revoked one no longer authenticates", async () => {
    const t = newDeployment();
    const alice = await newUser(t, "alice");
    const bob = await newUser(t, "bob");
    const token = await t.mutation(api.apiTokens.create, { serverSecret: SECRET, userId: alice, name: "ci", secretHash: HASH });
    const revoke = (userId: string) =>
      t.mutation(api.apiTokens.revoke, { serverSecret: SECRET, userId, tokenId: token.tokenId });
    await refused(revoke(bob), "NotFound", NO_API_TOKEN);
    await revoke(alice);
    await refused(
      t.mutation(api.apiTokens.authenticate, { serverSecret: SECRET, tokenId: token.tokenId, secretHash: HASH }),
      "AuthenticationFailed",
      WRONG_API_TOKEN,
    );
    expect(await t.query(api.apiTokens.list, { serverSecret: SECRET, userId: alice })).toEqual([]);
  });

  test("tokens per user are bounded and need the server secret", async () => {
    const t = newDeployment();
    const alice = await newUser(t, "alice");
    for (let n = 0; n < MAX_API_TOKENS_PER_USER; n++) {
      await t.mutation(api.apiTokens.create, { serverSecret: SECRET, userId: alice, name: `t${n}`, secretHash: HASH });
    }
    await refused(
      t.mutation(api.apiTokens.create, { serverSecret: SECRET, userId: alice, name: "more", secretHash: HASH }),
      "Conflict",
    );
    await refused(t.query(api.apiTokens.list, { serverSecret: "wrong", userId: alice }), "AuthenticationFailed");
  });
});
