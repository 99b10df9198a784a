/**
 * Pages of long lists, as orchestrator.domain.paging reads them: each page is
 * bounded by a number of items and by an estimate of their size, the first
 * item always taken. The Python adapter turns the cursor it was given into the
 * ID of the last item the previous page returned (`after…Id` arguments), so the
 * cursor's format and its sentences live in one place.
 */
import type { Doc } from "../_generated/dataModel";
import type { QueryCtx } from "../_generated/server";
import { byPublicId, type PublicIdTable } from "./access";
import { fail } from "./errors";

/** The most items one page may hold (orchestrator.domain.paging.MAX_PAGE). */
export const MAX_PAGE = 200;
/** Estimated bytes of the items of one page (PAGE_BYTES); far under a call's 16 MiB read. */
export const PAGE_BYTES = 2 * 1024 * 1024;
/** Estimated bytes of a record beside its long text (RECORD_OVERHEAD). */
export const RECORD_OVERHEAD = 200;

/** The most machines one page may hold: each brings its workers' counts (MACHINE_PAGE). */
export const MACHINE_PAGE = 20;

/** The sentence for a page size out of range (orchestrator.domain.paging.bad_limit). */
export function badLimit(most: number): string {
  return `A page holds 1 to ${most} items.`;
}
export const OTHER_LIST = "This page cursor belongs to another list. Load the list again from its first page.";

/** `limit` if it is a page size a reader may ask for (at most `most`). */
export function pageLimit(limit: number, most: number = MAX_PAGE): number {
  if (!Number.isInteger(limit) || limit < 1 || limit > most) fail("InvalidInput", badLimit(most));
  return limit;
}

const encoder = new TextEncoder();

/** The estimated stored size of a record holding `texts` (text_size in Python). */
export function textSize(...texts: (string | undefined | null)[]): number {
  return RECORD_OVERHEAD + texts.reduce((sum, t) => sum + (t ? encoder.encode(t).length : 0), 0);
}

/**
 * One page from `candidates` (in list order), read lazily so a long list is
 * never read past the page and one item more; and whether more follow.
 */
export async function cutPage<T>(
  candidates: AsyncIterable<T>,
  limit: number,
  size: (item: T) => number,
  budget: number = PAGE_BYTES,
): Promise<{ items: T[]; hasMore: boolean }> {
  const items: T[] = [];
  let used = 0;
  for await (const item of candidates) {
    const cost = size(item);
    if (items.length >= limit || (items.length > 0 && used + cost > budget)) return { items, hasMore: true };
    items.push(item);
    used += cost;
  }
  return { items, hasMore: false };
}

/** Two lazily read lists, each in list order, merged into one; `aFirst` says which goes first. */
export async function* mergedLists<A, B>(
  a: AsyncIterator<A>,
  b: AsyncIterator<B>,
  aFirst: (x: A, y: B) => boolean,
): AsyncGenerator<A | B> {
  let [x, y] = [await a.next(), await b.next()];
  while (!x.done || !y.done) {
    if (y.done || (!x.done && aFirst(x.value, y.value))) {
      yield x.value as A;
      x = await a.next();
    } else {
      yield y.value;
      y = await b.next();
    }
  }
}

/**
 * The record of `table` a page ended with (`afterId`; undefined: the list's first page).
 * A record of another list (`inList` false) or none at all refuses the cursor (OTHER_LIST).
 */
export async function pageStart<T extends PublicIdTable>(
  ctx: QueryCtx,
  table: T,
  afterId: string | undefined,
  inList: (last: Doc<T>) => boolean,
): Promise<Doc<T> | undefined> {
  if (afterId === undefined) return undefined;
  const last = await byPublicId(ctx, table, afterId);
  if (last === null || !inList(last)) fail("InvalidInput", OTHER_LIST);
  return last;
}
