/**
 * Lists: `?limit=` (1–100, default 20) and an opaque `?cursor=` for keyset pagination, one helper for
 * every list.
 *
 * The cursor is the exact database position of the last item: its sort timestamp as Postgres itself
 * printed it (UTC, always six fraction digits, so microseconds survive) and its id, base64url-encoded
 * JSON. The timestamp never passes through a JS `Date` (milliseconds only), so rows that share one
 * timestamp — every row written in one transaction — are each returned exactly once. Postgres compares
 * the position with the same precision it printed it. A cursor is validated to the calendar before it
 * reaches SQL, so a crafted one is a 400 and never a 22008 (a 500). It carries no tenant: a cursor from
 * another tenant can only select rows that row-level security already lets the caller see.
 */
import type { Fragment, TransactionSql } from 'postgres';
import { BadRequestError } from './errors';
import { isUuid } from './tenant';

/** The position of the last item of a page: the database's text of the sort timestamp, and the id. */
export interface Position {
  readonly at: string;
  readonly id: string;
}

export interface Page {
  readonly limit: number;
  readonly after?: Position;
}

/** Parses `limit` and `cursor`; `isId` validates the id part of a cursor (UUID by default). */
export function parsePage(
  query: Record<string, string | undefined> | null | undefined,
  isId: (value: unknown) => value is string = isUuid,
): Page {
  const rawLimit = query?.limit;
  let limit = 20;
  if (rawLimit !== undefined) {
    if (!/^\d{1,3}$/.test(rawLimit) || Number(rawLimit) < 1 || Number(rawLimit) > 100) {
      throw new BadRequestError('limit must be an integer from 1 to 100.');
    }
    limit = Number(rawLimit);
  }
  const cursor = query?.cursor;
  if (cursor === undefined) return { limit };
  return { limit, after: decodeCursor(cursor, isId) };
}

/** The cursor of a position; `at` is the text Postgres printed (see {@link keyset}), never a `Date`. */
export function encodeCursor(at: string, id: string): string {
  return Buffer.from(JSON.stringify([at, id]), 'utf8').toString('base64url');
}

/** Exactly what `to_char(… at time zone 'UTC', POSITION_FORMAT)` prints. */
const POSITION = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.\d{6}Z$/;
const POSITION_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"';

/**
 * True for a timestamp Postgres accepts as written: years 0001–9999 (there is no year 0), a real
 * calendar day (proleptic Gregorian, as Postgres), 00:00:00 to 23:59:59 (Postgres would roll `24:00`
 * and `:60` over to another position).
 */
export function isPosition(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  const m = POSITION.exec(value);
  if (!m) return false;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (year < 1 || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return false;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]!;
  return day <= days;
}

function decodeCursor(cursor: string, isId: (value: unknown) => value is string): Position {
  const invalid = new BadRequestError('cursor is not valid.');
  if (cursor.length === 0 || cursor.length > 512 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw invalid;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid;
  }
  if (!Array.isArray(parsed) || parsed.length !== 2) throw invalid;
  const [at, id] = parsed as unknown[];
  if (!isPosition(at) || !isId(id)) throw invalid;
  return { at, id };
}

/** How one list is ordered: a timestamp column, then a unique id column as the tie-breaker. */
export interface KeysetOrder {
  /** The sort timestamp column (`timestamptz`), optionally qualified: `m.created_at`. */
  readonly at: string;
  /** The tie-breaker column, unique within the list: `id`, `m.user_id`. */
  readonly id: string;
  /** The id column's type, for the cursor's parameter. */
  readonly idType: 'uuid' | 'text';
  readonly order: 'newest first' | 'oldest first';
}

/** The SQL pieces of one keyset page and the function that shapes the fetched rows. */
export interface Keyset {
  /** Select list items `page_at, page_id`: the row's exact position, printed by Postgres. */
  readonly position: Fragment;
  /** The condition "after the cursor" (`true` on the first page). */
  readonly after: Fragment;
  /** The `order by` list matching {@link after}. */
  readonly orderBy: Fragment;
  /** Rows to fetch: one more than the page, to know whether there is a next one. */
  readonly fetch: number;
  /** `{ items, nextCursor }` from the fetched rows (which carry `page_at`, `page_id`). */
  page<Row extends PositionColumns, Item>(rows: readonly Row[], toItem: (row: Row) => Item): { items: Item[]; nextCursor: string | null };
}

export interface PositionColumns {
  readonly page_at: string;
  readonly page_id: string;
}

/**
 * The keyset helper every list uses:
 * ```ts
 * const k = keyset(tx, parsePage(query), { at: 'created_at', id: 'id', idType: 'uuid', order: 'newest first' });
 * const rows = await tx`select …, ${k.position} from app.notes where tenant_id = ${tenantId} and ${k.after}
 *                       order by ${k.orderBy} limit ${k.fetch}`;
 * return ok(k.page(rows, toNote));
 * ```
 * A row-value comparison on `(at, id)` uses an index on `(tenant_id, at, id)` in either direction.
 */
export function keyset(sql: TransactionSql, page: Page, order: KeysetOrder): Keyset {
  const at = sql(order.at);
  const id = sql(order.id);
  const newest = order.order === 'newest first';
  let after = sql`true`;
  if (page.after) {
    // The parameter is text on purpose: typed timestamptz, postgres.js would serialize it through a JS
    // Date and drop the microseconds. Postgres parses the text with full precision.
    const cursorAt = sql`${page.after.at}::text::timestamptz`;
    const cursorId = order.idType === 'uuid' ? sql`${page.after.id}::uuid` : sql`${page.after.id}::text`;
    after = newest ? sql`(${at}, ${id}) < (${cursorAt}, ${cursorId})` : sql`(${at}, ${id}) > (${cursorAt}, ${cursorId})`;
  }
  return {
    position: sql`to_char(${at} at time zone 'UTC', ${POSITION_FORMAT}) as page_at, ${id}::text as page_id`,
    after,
    orderBy: newest ? sql`${at} desc, ${id} desc` : sql`${at}, ${id}`,
    fetch: page.limit + 1,
    page: (rows, toItem) => pageOf(rows, page.limit, toItem),
  };
}

/** Builds `{ items, nextCursor }` from `limit + 1` fetched rows. */
export function pageOf<Row extends PositionColumns, Item>(
  rows: readonly Row[],
  limit: number,
  toItem: (row: Row) => Item,
): { items: Item[]; nextCursor: string | null } {
  const visible = rows.slice(0, limit);
  const last = visible[visible.length - 1];
  const nextCursor = rows.length > limit && last ? encodeCursor(last.page_at, last.page_id) : null;
  return { items: visible.map(toItem), nextCursor };
}
