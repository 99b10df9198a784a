/** `orchestrator import`: records stored under their own IDs, once; broken references refused. */
import { describe, expect, test } from "vitest";
import { api } from "../convex/_generated/api";
import { MAX_WORKERS } from "../convex/lib/limits";
import { newDeployment, refused, SECRET } from "./setup";

const user = {
  userId: "usr_a",
  username: "alice",
  passwordHash: "$argon2id$x",
  createdAt: 1,
};
const machine = {
  machineId: "mch_a",
  userId: "usr_a",
  name: "laptop",
  createdAt: 2,
  rootDirectory: "/srv",
  secret: "s".repeat(43),
};

describe("restore", () => {
  test("stores each ID once, offline, with the new secret's hash", async () => {
    const t = newDeployment();
    const restore = (
      batch: Parameters<
        typeof t.mutation<typeof api.transfer.restore>
      >[1]["batch"],
    ) => t.mutation(api.transfer.restore, { serverSecret: SECRET, batch });
    expect(await restore({ kind: "user", records: [user] })).toEqual(["usr_a"]);
    expect(await restore({ kind: "user", records: [user] })).toEqual([]);
    expect(await restore({ kind: "machine", records: [machine] })).toEqual([
      "mch_a",
    ]);
    const token = { machineId: "mch_a", machineSecret: machine.secret };
    const found = await t.query(api.machines.authenticate, token);
    expect([found.status, found.rootDirectory]).toEqual(["offline", "/srv"]);
  });

  test("a record whose parent is missing is refused and nothing of the batch is stored", async () => {
    const t = newDeployment();
    const batch = { kind: "machine" as const, records: [machine] };
    await refused(
      t.mutation(api.transfer.restore, { serverSecret: SECRET, batch }),
      "InvalidInput",
      "The machine mch_a refers to a record that is not in the file.",
    );
  });

  test("a username another account has is refused", async () => {
    const t = newDeployment();
    const batch = { kind: "user" as const, records: [user] };
    await t.mutation(api.transfer.restore, { serverSecret: SECRET, batch });
    const other = {
      kind: "user" as const,
      records: [{ ...user, userId: "usr_b" }],
    };
    await refused(
      t.mutation(api.transfer.restore, { serverSecret: SECRET, batch: other }),
      "InvalidInput",
      /^The username 'alice' is already used by another account here\./,
    );
  });

  test("a machine's workers past MAX_WORKERS are refused, as adding one is", async () => {
    const t = newDeployment();
    const restore = (kind: "user" | "machine" | "worker", records: object[]) =>
      t.mutation(api.transfer.restore, { serverSecret: SECRET, batch: { kind, records } as never });
    await restore("user", [user]);
    await restore("machine", [machine]);
    const worker = (n: number) => ({
      workerId: `wrk_${n}`,
      machineId: "mch_a",
      name: null,
      directory: `repo${n}`,
      status: "offline",
      createdAt: 3,
      approvedAt: null,
      approvedBy: null,
      models: [],
    });
    const full = Array.from({ length: MAX_WORKERS }, (_, n) => worker(n));
    expect(await restore("worker", full)).toHaveLength(MAX_WORKERS);
    await refused(restore("worker", [worker(MAX_WORKERS)]), "Conflict", /^A machine can have at most 100 workers\./);
  });

  test("needs the server secret", async () => {
    const t = newDeployment();
    const batch = { kind: "user" as const, records: [user] };
    await refused(
      t.mutation(api.transfer.restore, { serverSecret: "wrong", batch }),
      "AuthenticationFailed",
    );
  });
});
