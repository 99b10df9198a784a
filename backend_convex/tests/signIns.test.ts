/** Sign-ins: recorded per account, ended one by one or all but one, bounded per account. */
import { describe, expect, test } from "vitest";
import { api } from "../convex/_generated/api";
import { MAX_SIGN_INS_PER_USER } from "../convex/lib/limits";
import { newDeployment, newUser, refused, SECRET } from "./setup";

describe("sign-ins", () => {
  test("a sign-in is the user's until it ends; another user cannot use or end it", async () => {
    const t = newDeployment();
    const alice = await newUser(t, "alice");
    const bob = await newUser(t, "bob");
    const as = (userId: string) => ({ serverSecret: SECRET, userId });
    await t.mutation(api.signIns.add, { ...as(alice), signInId: "sgn_a" });
    expect(await t.query(api.signIns.has, { ...as(alice), signInId: "sgn_a" })).toBe(true);
    expect(await t.query(api.signIns.has, { ...as(bob), signInId: "sgn_a" })).toBe(false);
    await t.mutation(api.signIns.end, { ...as(bob), signInId: "sgn_a" });
    expect(await t.query(api.signIns.has, { ...as(alice), signInId: "sgn_a" })).toBe(true);
    await t.mutation(api.signIns.end, { ...as(alice), signInId: "sgn_a" });
    expect(await t.query(api.signIns.has, { ...as(alice), signInId: "sgn_a" })).toBe(false);
  });

  test("ending the others keeps only the one asked for", async () => {
    const t = newDeployment();
    const alice = await newUser(t, "alice");
    const owner = { serverSecret: SECRET, userId: alice };
    for (const signInId of ["sgn_a", "sgn_b", "sgn_c"]) await t.mutation(api.signIns.add, { ...owner, signInId });
    expect(await t.mutation(api.signIns.endOthers, { ...owner, keep: "sgn_b" })).toBe(2);
    expect(await t.query(api.signIns.has, { ...owner, signInId: "sgn_b" })).toBe(true);
    expect(await t.mutation(api.signIns.endOthers, { ...owner, keep: null })).toBe(1);
    expect(await t.run(async (ctx) => await ctx.db.query("signIns").collect())).toEqual([]);
  });

  test("only the newest sign-ins of an account are kept", async () => {
    const t = newDeployment();
    const alice = await newUser(t, "alice");
    const owner = { serverSecret: SECRET, userId: alice };
    for (let n = 0; n <= MAX_SIGN_INS_PER_USER; n++) {
      await t.mutation(api.signIns.add, { ...owner, signInId: `sgn_${n}` });
    }
    expect(await t.query(api.signIns.has, { ...owner, signInId: "sgn_0" })).toBe(false);
    expect(await t.query(api.signIns.has, { ...owner, signInId: "sgn_1" })).toBe(true);
  });

  test("a sign-in or a new password for an unknown account is NotFound", async () => {
    const t = newDeployment();
    const owner = { serverSecret: SECRET, userId: "usr_nobody" };
    await refused(t.mutation(api.signIns.add, { ...owner, signInId: "sgn_x" }), "NotFound");
    await refused(t.mutation(api.accounts.setPasswordHash, { ...owner, passwordHash: "h" }), "NotFound");
  });
});
