/** A worker's permission policy: the safe default, set when added, changed by its owner only. */
import { expect, test } from "vitest";
import { api } from "../convex/_generated/api";
import { newDeployment, newMachine, newUser, refused, SECRET, strangersWorker } from "./setup";

const OPEN = { bash: "allow", edit: "allow", webfetch: "deny", externalDirectory: "ask" } as const;

test("a worker added without a policy asks; a given one is kept and can be changed", async () => {
  const t = newDeployment();
  const alice = await newUser(t, "alice");
  const { machine } = await newMachine(t, alice);
  const owner = { serverSecret: SECRET, userId: alice };
  const plain = await t.mutation(api.workers.add, { ...owner, machineId: machine.machineId, directory: "a", name: null });
  expect(plain.permissionPolicy).toEqual({ bash: "ask", edit: "ask", webfetch: "ask", externalDirectory: "deny" });
  const chosen = await t.mutation(api.workers.add, {
    ...owner, machineId: machine.machineId, directory: "b", name: null, permissionPolicy: OPEN,
  });
  expect(chosen.permissionPolicy).toEqual(OPEN);
  const changed = await t.mutation(api.workers.setPermissionPolicy, {
    ...owner, workerId: plain.workerId, permissionPolicy: OPEN,
  });
  expect(changed).toEqual({ ...plain, permissionPolicy: OPEN });
  const listed = await t.query(api.workers.list, { ...owner, machineId: machine.machineId });
  expect(listed.map((w) => w.permissionPolicy)).toEqual([OPEN, OPEN]);
});

test("another user cannot change a policy, and a value outside ask/allow/deny is refused", async () => {
  const t = newDeployment();
  const { alice, bob, machine, worker } = await strangersWorker(t, "a");
  await refused(
    t.mutation(api.workers.setPermissionPolicy, { serverSecret: SECRET, userId: bob, workerId: worker.workerId, permissionPolicy: OPEN }),
    "NotFound",
  );
  await expect(
    t.mutation(api.workers.setPermissionPolicy, {
      serverSecret: SECRET, userId: alice, workerId: worker.workerId,
      permissionPolicy: { ...OPEN, bash: "sometimes" as "ask" },
    }),
  ).rejects.toThrow();
  const [kept] = await t.query(api.workers.list, { serverSecret: SECRET, userId: alice, machineId: machine.machineId });
  expect(kept.permissionPolicy.bash).toBe("ask");
});
