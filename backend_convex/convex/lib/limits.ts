/**
 * Bounds on every read, so no query or mutation can grow past Convex's
 * per-transaction limits. Each is far above what one person's deployment
 * holds; where a list is cut, the newest (or most relevant) entries are kept.
 */

/** Machines in one user's list. */
export const MAX_MACHINES = 100;
/** Workers of one machine, listed or counted. */
export const MAX_WORKERS = 100;
/** Pending workers listed across one user's machines. */
export const MAX_PENDING_WORKERS = 200;
/** Accounts listed or counted. */
export const MAX_USERS = 1000;
/** Sessions of one worker in its list (open ones first). */
export const MAX_SESSIONS = 500;
/** Messages of one session in its list: the newest ones. */
export const MAX_MESSAGES = 1000;
/** Chunks returned by one read of a chunk cursor (the reader asks again for more). */
export const CHUNK_PAGE = 500;
/** Chunks joined into a reply that ends without a full text. */
export const MAX_REPLY_CHUNKS = 8000;
/** Open sessions, queued messages and answered requests in one machine's work list. */
export const MAX_WORK_SESSIONS = 500;
export const MAX_WORK_MESSAGES = 1000;
export const MAX_WORK_PERMISSIONS = 500;
/** Waiting permission requests listed for one session. */
export const MAX_PERMISSIONS = 200;
/** Machines marked offline per sweep; the next sweep takes the rest. */
export const SWEEP_BATCH = 200;
