/** The golden cases shared with Python (tests/golden/rules.json): both languages give each the same answer. */
import { ConvexError } from "convex/values";
import { describe, expect, test } from "vitest";
import raw from "../../tests/golden/rules.json?raw";
import * as commandRules from "../convex/lib/commandRules";
import * as errors from "../convex/lib/errors";
import * as jobs from "../convex/lib/jobs";
import * as limits from "../convex/lib/limits";
import * as paging from "../convex/lib/paging";
import * as rules from "../convex/lib/rules";

type Text = string | { repeat: string; times: number; suffix?: string };
type Case = { args: unknown[]; ok?: unknown; error?: string; kind?: string };
/** A case whose TypeScript answer is known to differ, with the answer it gives today. */
type Known = Case & { typescript_differs?: { ok: unknown; why: string } };
type Golden = {
  constants: { python: string; typescript: string; value: unknown }[];
  cases: Record<string, Known[]>;
};

const golden = JSON.parse(raw) as Golden;
const modules: Record<string, Record<string, unknown>> = { commandRules, errors, jobs, limits, paging, rules };

/** A fixture value as the text it stands for (long texts are written as a repeat). */
function expand(value: unknown): unknown {
  if (value !== null && typeof value === "object" && "repeat" in value) {
    const text = value as Exclude<Text, string>;
    return text.repeat.repeat(text.times) + (text.suffix ?? "");
  }
  return value;
}

function nextDueIso(cron: string, timezone: string, after: string): string | null | "unreadable" {
  const found = jobs.nextDue(cron, timezone, Date.parse(after));
  return typeof found === "number" ? new Date(found).toISOString().replace(".000Z", "Z") : found;
}

/** Each rule's TypeScript implementation, called with a case's arguments. */
const implementations: Record<string, (...args: never[]) => unknown> = {
  name: rules.validateName,
  relative_path: rules.normalizeRelativePath,
  command_path: commandRules.validatePath,
  git_url: commandRules.validateGitUrl,
  cursor: commandRules.validateCursor,
  command_kind: commandRules.parseKind,
  message: rules.validateMessage,
  chunk: rules.validateChunk,
  page_limit: paging.pageLimit,
  next_due: nextDueIso,
};

function outcome(rule: string, args: unknown[]): Case {
  const shown = { args };
  try {
    return { ...shown, ok: implementations[rule](...(args.map(expand) as never[])) };
  } catch (error) {
    if (!(error instanceof ConvexError)) throw error;
    const data = error.data as errors.ErrorData;
    return { ...shown, error: data.message, kind: data.kind };
  }
}

test("every rule of the fixture has a TypeScript implementation", () => {
  expect(Object.keys(golden.cases).sort()).toEqual(Object.keys(implementations).sort());
});

test.each(golden.constants)("$typescript is $value, as $python", ({ typescript, value }) => {
  const [module, name] = typescript.split(".");
  expect(modules[module][name]).toEqual(value);
});

describe.each(Object.entries(golden.cases))("%s", (rule, cases) => {
  test.each(cases.map((c, i) => [i, c] as const))("case %i", (_, expected) => {
    const { typescript_differs: differs, ...agreed } = expected;
    const wanted = differs === undefined ? agreed : { ...agreed, ok: differs.ok };
    expect(outcome(rule, expected.args)).toEqual({ ...wanted, ok: expand(wanted.ok) });
  });
});
