/* eslint-disable */
/**
 * Generated `api` utility.
 *
 * THIS CODE IS AUTOMATICALLY GENERATED.
 *
 * To regenerate, run `npx convex dev`.
 * @module
 */

import type {
  ApiFromModules,
  FilterApi,
  FunctionReference,
} from "convex/server";
import type * as accounts from "../accounts.js";
import type * as apiTokens from "../apiTokens.js";
import type * as chat from "../chat.js";
import type * as chatMachine from "../chatMachine.js";
import type * as cleanup from "../cleanup.js";
import type * as commands from "../commands.js";
import type * as crons from "../crons.js";
import type * as jobs from "../jobs.js";
import type * as jobsScheduler from "../jobsScheduler.js";
import type * as lib_access from "../lib/access.js";
import type * as lib_auth from "../lib/auth.js";
import type * as lib_budget from "../lib/budget.js";
import type * as lib_cascade from "../lib/cascade.js";
import type * as lib_chat from "../lib/chat.js";
import type * as lib_commandRules from "../lib/commandRules.js";
import type * as lib_errors from "../lib/errors.js";
import type * as lib_expiry from "../lib/expiry.js";
import type * as lib_functions from "../lib/functions.js";
import type * as lib_ids from "../lib/ids.js";
import type * as lib_inbox from "../lib/inbox.js";
import type * as lib_jobs from "../lib/jobs.js";
import type * as lib_limits from "../lib/limits.js";
import type * as lib_paging from "../lib/paging.js";
import type * as lib_partText from "../lib/partText.js";
import type * as lib_records from "../lib/records.js";
import type * as lib_rules from "../lib/rules.js";
import type * as lib_text from "../lib/text.js";
import type * as lib_turns from "../lib/turns.js";
import type * as lib_undo from "../lib/undo.js";
import type * as lib_validators from "../lib/validators.js";
import type * as machines from "../machines.js";
import type * as migrations from "../migrations.js";
import type * as notifications from "../notifications.js";
import type * as parts from "../parts.js";
import type * as questions from "../questions.js";
import type * as signIns from "../signIns.js";
import type * as transfer from "../transfer.js";
import type * as workers from "../workers.js";

/**
 * A utility for referencing Convex functions in your app's API.
 *
 * Usage:
 * ```js
 * const myFunctionReference = api.myModule.myFunction;
 * ```
 */
declare const fullApi: ApiFromModules<{
  accounts: typeof accounts;
  apiTokens: typeof apiTokens;
  chat: typeof chat;
  chatMachine: typeof chatMachine;
  cleanup: typeof cleanup;
  commands: typeof commands;
  crons: typeof crons;
  jobs: typeof jobs;
  jobsScheduler: typeof jobsScheduler;
  "lib/access": typeof lib_access;
  "lib/auth": typeof lib_auth;
  "lib/budget": typeof lib_budget;
  "lib/cascade": typeof lib_cascade;
  "lib/chat": typeof lib_chat;
  "lib/commandRules": typeof lib_commandRules;
  "lib/errors": typeof lib_errors;
  "lib/expiry": typeof lib_expiry;
  "lib/functions": typeof lib_functions;
  "lib/ids": typeof lib_ids;
  "lib/inbox": typeof lib_inbox;
  "lib/jobs": typeof lib_jobs;
  "lib/limits": typeof lib_limits;
  "lib/paging": typeof lib_paging;
  "lib/partText": typeof lib_partText;
  "lib/records": typeof lib_records;
  "lib/rules": typeof lib_rules;
  "lib/text": typeof lib_text;
  "lib/turns": typeof lib_turns;
  "lib/undo": typeof lib_undo;
  "lib/validators": typeof lib_validators;
  machines: typeof machines;
  migrations: typeof migrations;
  notifications: typeof notifications;
  parts: typeof parts;
  questions: typeof questions;
  signIns: typeof signIns;
  transfer: typeof transfer;
  workers: typeof workers;
}>;
export declare const api: FilterApi<
  typeof fullApi,
  FunctionReference<any, "public">
>;
export declare const internal: FilterApi<
  typeof fullApi,
  FunctionReference<any, "internal">
>;
