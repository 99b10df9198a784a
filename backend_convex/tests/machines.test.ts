/** Machines and workers: ownership, worker tokens, status transitions, the stale-machine cron. */
import { afterEach, describe, expect, test, vi } from "vitest";
import { api, internal } from "../convex/_generated/api";
import crons from "../convex/crons";
import { STALE_AFTER_MS } from "../convex/machines";
import { newDeployment, newMachine, newUser, newWorker, refused, SECRET, strangersWorker } from "./setup";

afterEach(() => {
  vi.useRealTimers();
});

describe("ownership", () => {
  test("another user's machine and worker are not found, and stay unchanged", async () => {
    const t = newDeployment();
    const { alice, bob, machine, worker } = await strangersWorker(t, "src");
    const asBob = { serverSecret: SECRET, userId: bob };
    const onMachine = { ...asBob, machineId: machine.machineId };
    for (const call of [
      () => t.query(api.machines.get, onMachine),
      () => t.mutation(api.machines.remove, onMachine),
      () => t.query(api.workers.list, onMachine),
      () => t.mutation(api.workers.add, { ...onMachine, directory: "x", name: null }),
      () => t.mutation(api.workers.issueToken, onMachine),
    ]) {
      await refused(call(), "NotFound", "No such machine.");
    }
    for (const call of [
      () => t.mutation(api.workers.approve, { ...asBob, workerId: worker.workerId }),
      () => t.mutation(api.workers.remove, { ...asBob, workerId: worker.workerId }),
      () => t.mutation(api.chat.startSession, { ...asBob, workerId: worker.workerId, model: "m" }),
    ]) {
      await refused(call(), "NotFound", "No such worker.");
    }
    expect((await t.query(api.machines.listPage, { ...asBob, limit: 20 })).machines).toEqual([]);
    expect(await t.query(api.workers.list, { serverSecret: SECRET, userId: alice, machineId: machine.machineId })).toEqual([
      worker,
    ]);
  });

  test("machine summaries count workers by status", async () => {
    const t = newDeployment();
    const alice = await newUser(t, "alice");
    const { machine, token } = await newMachine(t, alice, "laptop", true);
    const owner = { serverSecret: SECRET, userId: alice, machineId: machine.machineId };
    const ready = await t.mutation(api.workers.add, { ...owner, directory: "a", name: null });
    const online = await t.mutation(api.workers.add, { ...owner, directory: "b", name: "B" });
    await t.mutation(api.workers.heartbeat, { ...token, workerId: online.workerId });
    const issued = await t.mutation(api.workers.issueToken, owner);
    await t.mutation(api.workers.register, { ...token, tokenMachineId: issued.machineId, workerId: issued.workerId, directory: "c", name: null });
    const [summary] = (await t.query(api.machines.listPage, { serverSecret: SECRET, userId: alice, limit: 20 })).machines;
    expect(summary.workers).toEqual({ pending_authorization: 1, ready: 1, online: 1, offline: 0 });
    expect(ready.status).toBe("ready");
  });
});

describe("worker tokens and transitions", () => {
  test("a worker token registers one pending worker, once, on its own machine only", async () => {
    const t = newDeployment();
    const alice = await newUser(t, "alice");
    const { machine, token } = await newMachine(t, alice);
    const { token: otherToken } = await newMachine(t, alice, "desktop");
    const issued = await t.mutation(api.workers.issueToken, { serverSecret: SECRET, userId: alice, machineId: machine.machineId });
    const register = (tok: typeof token, directory = "repo") =>
      t.mutation(api.workers.register, { ...tok, tokenMachineId: issued.machineId, workerId: issued.workerId, directory, name: null });
    await refused(register(otherToken), "InvalidInput", "This worker token was issued for another machine.");
    await refused(register(token, "../etc"), "PathOutsideRoot", "The path must not contain '..'.");
    const worker = await register(token);
    expect(worker).toMatchObject({ workerId: issued.workerId, status: "pending_authorization", approvedAt: null });
    await refused(register(token), "Conflict", "This worker token has already been used.");
    await refused(
      t.mutation(api.workers.heartbeat, { ...token, workerId: worker.workerId }),
      "InvalidTransition",
      "This worker is waiting for approval in the web UI.",
    );
    const owner = { serverSecret: SECRET, userId: alice, workerId: worker.workerId };
    const approved = await t.mutation(api.workers.approve, owner);
    expect(approved).toMatchObject({ status: "ready", approvedBy: alice });
    await refused(t.mutation(api.workers.approve, owner), "InvalidTransition", "Only a worker waiting for approval can be approved.");
    const online = await t.mutation(api.workers.heartbeat, { ...token, workerId: worker.workerId });
    expect(online.status).toBe("online");
    const offline = await t.mutation(api.workers.offline, { ...token, workerId: worker.workerId });
    expect([offline.status, offline.lastHeartbeat]).toEqual(["offline", online.lastHeartbeat]);
    expect(offline.problem).toBeNull();
    // A machine that cannot run the worker says why; the next heartbeat clears it.
    const problem = "The folder 'a' leads outside the machine's root.";
    const refusedWorker = await t.mutation(api.workers.offline, { ...token, workerId: worker.workerId, problem });
    expect([refusedWorker.status, refusedWorker.problem]).toEqual(["offline", problem]);
    await refused(
      t.mutation(api.workers.offline, { ...token, workerId: worker.workerId, problem: " " }),
      "InvalidInput",
      "A worker's problem must be a sentence of 1-8192 characters.",
    );
    const back = await t.mutation(api.workers.heartbeat, { ...token, workerId: worker.workerId });
    expect([back.status, back.problem]).toEqual(["online", null]);
  });

  test("names and directories follow the domain's rules", async () => {
    const t = newDeployment();
    const alice = await newUser(t, "alice");
    await refused(t.action(api.machines.create, { serverSecret: SECRET, userId: alice, name: "  " }), "InvalidInput", "Machine name must not be empty.");
    await refused(
      t.action(api.machines.create, { serverSecret: SECRET, userId: "usr_missing", name: "x" }),
      "NotFound",
      "No such user.",
    );
    const { machine } = await newMachine(t, alice, "  laptop ");
    expect(machine.name).toBe("laptop");
    const add = (directory: string, name: string | null) =>
      t.mutation(api.workers.add, { serverSecret: SECRET, userId: alice, machineId: machine.machineId, directory, name });
    expect(await add("./src//app/", "  App ")).toMatchObject({ directory: "src/app", name: "App" });
    expect(await add("", "")).toMatchObject({ directory: "", name: null });
    await refused(add("/etc", null), "PathOutsideRoot");
    await refused(add("x", "a".repeat(101)), "InvalidInput", "Worker name must be at most 100 characters.");
  });
});

describe("stale machines", () => {
  test("the cron sweeps machines silent for STALE_AFTER_MS offline, with their workers", async () => {
    vi.useFakeTimers();
    const t = newDeployment();
    const alice = await newUser(t, "alice");
    const { machine, token } = await newMachine(t, alice, "laptop", true);
    const worker = await newWorker(t, alice, machine.machineId, "a");
    await t.mutation(api.workers.heartbeat, { ...token, workerId: worker.workerId });
    vi.advanceTimersByTime(STALE_AFTER_MS);
    expect(await t.mutation(internal.machines.sweepStale, {})).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(await t.mutation(internal.machines.sweepStale, {})).toEqual([machine.machineId]);
    expect((await t.query(api.machines.authenticate, token)).status).toBe("offline");
    const [after] = await t.query(api.workers.listOwn, token);
    expect(after.status).toBe("offline");
  });

  test("the sweep is scheduled every minute", () => {
    const jobs = (crons as unknown as { crons: Record<string, { name: string; schedule: unknown }> }).crons;
    expect(jobs["mark stale machines offline"]).toMatchObject({
      name: "machines:sweepStale",
      schedule: { type: "interval", seconds: 60 },
    });
  });
});
