/**
 * The public functions only the web server calls: each takes the deployment's
 * server secret besides its own arguments and checks it (lib/auth.ts
 * `requireServer`) before it reads or writes anything else.
 */
import type { RegisteredMutation, RegisteredQuery } from "convex/server";
import { v, type Infer, type ObjectType, type PropertyValidators, type Validator } from "convex/values";
import { mutation, query, type MutationCtx, type QueryCtx } from "../_generated/server";
import { requireServer } from "./auth";
import { serverCaller } from "./validators";

/** The arguments of a server function that acts for one user (who is checked to own what it names). */
export const owner = { userId: v.string() };

/** The arguments of a server function on one of the user's chat sessions. */
export const ownerOfSession = { ...owner, chatSessionId: v.string() };

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Returns = Validator<any, "required", any>;

/** A server function as written: its own arguments, its result and what it does with them. */
type ServerFunction<Ctx, A extends PropertyValidators, R extends Returns> = {
  args: A;
  returns: R;
  handler: (ctx: Ctx, args: ObjectType<A>) => Promise<Infer<R>>;
};

/** What the web server passes: the function's arguments and the server secret. */
type ServerArgs<A extends PropertyValidators> = ObjectType<typeof serverCaller & A>;

/**
 * The function as registered: the secret joins its arguments and is checked first. (Its
 * argument types are those of ServerArgs; a registered function's types are the ones
 * serverQuery and serverMutation declare.)
 */
function withServerSecret<Ctx, A extends PropertyValidators, R extends Returns>(fn: ServerFunction<Ctx, A, R>) {
  return {
    args: { ...serverCaller, ...fn.args },
    returns: fn.returns,
    handler: async (ctx: Ctx, { serverSecret, ...args }: { serverSecret: string }) => {
      requireServer(serverSecret);
      return await fn.handler(ctx, args as ObjectType<A>);
    },
  };
}

/** A query the web server calls. */
export function serverQuery<A extends PropertyValidators, R extends Returns>(
  fn: ServerFunction<QueryCtx, A, R>,
): RegisteredQuery<"public", ServerArgs<A>, Promise<Infer<R>>> {
  return query(withServerSecret(fn) as unknown as Parameters<typeof query>[0]);
}

/** A mutation the web server calls. */
export function serverMutation<A extends PropertyValidators, R extends Returns>(
  fn: ServerFunction<MutationCtx, A, R>,
): RegisteredMutation<"public", ServerArgs<A>, Promise<Infer<R>>> {
  return mutation(withServerSecret(fn) as unknown as Parameters<typeof mutation>[0]);
}
