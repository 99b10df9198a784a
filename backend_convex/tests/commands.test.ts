/** Directory commands: queued by the owner, claimed once, finished once, recovered on restart. */
import { expect, test } from "vitest";
import { api } from "../convex/_generated/api";
import { RESTARTED } from "../convex/lib/commandRules";
import { newDeployment, newMachine, newUser, refused, SECRET, type Deployment } from "./setup";

const NONE = { parents: false, url: null, cursor: null };

/** Alice's online machine: its token, and the owner's arguments for commands on it. */
async function onlineMachine(t: Deployment) {
  const alice = await newUser(t, "alice");
  const { machine, token } = await newMachine(t, alice, "laptop", true);
  return { alice, token, owner: { serverSecret: SECRET, userId: alice, machineId: machine.machineId } };
}

test("a command runs once and a restart never runs a half-done one again", async () => {
  const t = newDeployment();
  const { alice, token, owner } = await onlineMachine(t);
  const made = await t.mutation(api.commands.create, { ...owner, kind: "mkdir", arguments: { ...NONE, path: "./a/" } });
  expect(made).toMatchObject({ status: "pending", arguments: { path: "a" }, progress: 0, result: null });
  const listed = await t.mutation(api.commands.create, { ...owner, kind: "list_dir", arguments: { ...NONE, path: "" } });
  for (const command of [made, listed]) {
    await t.mutation(api.commands.claimCommand, { ...token, commandId: command.commandId });
  }
  await refused(
    t.mutation(api.commands.claimCommand, { ...token, commandId: made.commandId }),
    "Conflict",
    "This command has already been claimed.",
  );
  await refused(
    t.mutation(api.commands.reportProgress, { ...token, commandId: made.commandId, progress: 101, line: "" }),
    "InvalidInput",
    "Progress must be a whole number from 0 to 100.",
  );
  await t.mutation(api.machines.goOnline, { ...token, rootDirectory: "/home/code" });
  const open = await t.query(api.commands.listOpen, token);
  expect(open.map((c) => [c.commandId, c.status])).toEqual([[listed.commandId, "pending"]]);
  const failed = await t.query(api.commands.get, { serverSecret: SECRET, userId: alice, commandId: made.commandId });
  expect([failed.status, failed.error]).toEqual(["failed", RESTARTED]);
});

test("finishing needs exactly one outcome that fits the command", async () => {
  const t = newDeployment();
  const { token, owner } = await onlineMachine(t);
  const command = await t.mutation(api.commands.create, { ...owner, kind: "mkdir", arguments: { ...NONE, path: "new" } });
  await t.mutation(api.commands.claimCommand, { ...token, commandId: command.commandId });
  const finish = (result: { path: string; entries: never[]; total: number; nextCursor: string | null } | null, error: string | null) =>
    t.mutation(api.commands.finishCommand, { ...token, commandId: command.commandId, result, error });
  await refused(finish(null, null), "InvalidInput", "Finish a command with either a result or an error.");
  await refused(finish({ path: "new", entries: [], total: 0, nextCursor: "1/x" }, null), "InvalidInput", "Only a list_dir result has entries.");
  const done = await finish({ path: "new", entries: [], total: 0, nextCursor: null }, null);
  expect(done).toMatchObject({ status: "done", progress: 100 });
  await refused(finish(null, "late"), "Conflict", "This command has already finished.");
});
