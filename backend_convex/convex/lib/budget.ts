/**
 * How much one mutation may still read and write while it works through rows
 * of unknown size (deleting below a record, expiring requests, pausing jobs):
 * a count of rows and an estimate of bytes, whichever runs out first.
 */
import type { TableNames } from "../_generated/dataModel";
import { getDocumentSize, type GenericId, type Value } from "convex/values";
import { PAGE_BYTES } from "./paging";

/** Documents still to delete, and bytes still to read, in this mutation. */
export type Budget = { left: number; bytes: number };

/**
 * Bytes one mutation reads while deleting: a chat row can be up to 1 MiB (a long
 * reply's segments, a part's text), so the count of rows alone does not bound a
 * read under Convex's 16 MiB; a batch stops when either runs out. Deleting a row
 * reads it again, so each row counts twice. As much as one page of a list
 * (PAGE_BYTES), so a batch stays well under the limit with room for the rows
 * it points at.
 */
export const BYTES_BUDGET = PAGE_BYTES;
/** Rows read at once: the last row may pass the budget by at most 2 x 1 MiB. */
const PAGE = 1;

/** A budget of `rows` rows and `bytes` bytes. */
export function budgetOf(rows: number, bytes: number = BYTES_BUDGET): Budget {
  return { left: rows, bytes };
}

/** Take `bytes` read outside `eachRow` (e.g. documents a row points at) from the budget. */
export function spend(budget: Budget, bytes: number): void {
  budget.bytes -= bytes;
}

/**
 * Apply `act` to every row `page` returns until it returns none (true) or the
 * budget runs out; `act` must take the row out of what `page` returns (delete it,
 * or change the field the page's index selects on).
 */
export async function eachRow<Row extends { _id: GenericId<TableNames> }>(
  page: (size: number) => Promise<Row[]>,
  budget: Budget,
  act: (row: Row) => Promise<void>,
): Promise<boolean> {
  for (;;) {
    if (budget.left <= 0 || budget.bytes <= 0) return false;
    const rows = await page(Math.min(budget.left, PAGE));
    if (rows.length === 0) return true;
    for (const row of rows) {
      await act(row);
      budget.left--;
      budget.bytes -= 2 * getDocumentSize(row as unknown as Record<string, Value>);
    }
  }
}
