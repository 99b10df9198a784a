/** Scheduled housekeeping. */
import { cronJobs } from "convex/server";
import { internal } from "./_generated/api";

const crons = cronJobs();

// Machines whose process died without saying goodbye go offline (with their workers).
crons.interval("mark stale machines offline", { seconds: 30 }, internal.machines.sweepStale, {});

export default crons;
