/**
 * Bounds on every read, so no query or mutation can grow past Convex's
 * per-transaction limits. Each is far above what one person's deployment
 * holds; where a list is cut, the newest (or most relevant) entries are kept.
 */

/** Workers one machine may have (MAX_WORKERS_PER_MACHINE in Python): listed and counted whole. */
export const MAX_WORKERS = 100;
/** Accounts counted (count_users: only whether there are any matters); listing is paged. */
export const MAX_USERS = 1000;
/** Chunks returned by one read of a chunk cursor (the reader asks again for more). */
export const CHUNK_PAGE = 500;
/** Chunks joined into a reply that ends without a full text. */
export const MAX_REPLY_CHUNKS = 8000;
/** Open sessions, queued messages and answered requests in one machine's work list. */
export const MAX_WORK_SESSIONS = 500;
export const MAX_WORK_MESSAGES = 1000;
export const MAX_WORK_PERMISSIONS = 500;
/** Open turns the notifier reads at once (the oldest; as the embedded backend's LIMIT 1000). */
export const MAX_OPEN_TURNS = 1000;
/** Machines marked offline per sweep; the next sweep takes the rest. */
export const SWEEP_BATCH = 200;
/** Runs of one job in its history (JOB_RUNS_LIMIT in Python): the newest ones. */
export const MAX_JOB_RUNS = 50;
/** Due jobs handed to one scheduler tick; the next tick takes the rest. */
export const MAX_DUE_JOBS = 500;
/** Due jobs the deployment's own cron starts in one mutation; a full batch schedules the next at once. */
export const CRON_DUE_JOBS = 100;
/** Parts listed at once (orchestrator.domain.parts.MAX_LISTED_PARTS). */
export const MAX_LISTED_PARTS = 2000;
/** Sign-ins kept per account (domain/model.py MAX_SIGN_INS_PER_USER); the oldest end first. */
export const MAX_SIGN_INS_PER_USER = 100;
/** A worker's problem: one sentence naming its folder (machine_api.py MAX_PROBLEM_LENGTH). */
export const MAX_PROBLEM_LENGTH = 8192;
