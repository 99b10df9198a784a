/** Scheduled housekeeping, and starting scheduled jobs' due runs. */
import { cronJobs } from "convex/server";
import { internal } from "./_generated/api";

const crons = cronJobs();

// Machines whose process died without saying goodbye go offline (with their workers): every
// minute, half of STALE_AFTER_MS, so a dead machine shows offline within 3 minutes.
crons.interval("mark stale machines offline", { seconds: 60 }, internal.machines.sweepStale, {});

// Scheduled jobs start their due runs (the web server's scheduler may do the same: each slot runs once).
crons.cron("start due job runs", "* * * * *", internal.jobsScheduler.runDue, {});

export default crons;
