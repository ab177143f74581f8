/**
 * Lists: `?limit=` (1–100, default 20) and an opaque `?cursor=` for keyset pagination. The cursor is the
 * position (timestamp and id) of the last item, base64url-encoded; it carries no tenant, so a cursor
 * from another tenant can only ever select rows that row-level security already lets the caller see.
 */
import { BadRequestError } from './errors';
import { isUuid } from './tenant';

export interface Page {
  readonly limit: number;
  readonly after?: { readonly at: string; readonly id: string };
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/;

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

export function encodeCursor(at: Date | string, id: string): string {
  const iso = typeof at === 'string' ? at : at.toISOString();
  return Buffer.from(JSON.stringify([iso, id]), 'utf8').toString('base64url');
}

function decodeCursor(cursor: string, isId: (value: unknown) => value is string): { at: string; id: string } {
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
  if (typeof at !== 'string' || !ISO.test(at) || Number.isNaN(Date.parse(at)) || !isId(id)) throw invalid;
  return { at, id };
}

/** Builds `{ items, nextCursor }` from `limit + 1` fetched rows. */
export function pageOf<Row, Item>(
  rows: readonly Row[],
  limit: number,
  position: (row: Row) => { at: Date | string; id: string },
  toItem: (row: Row) => Item,
): { items: Item[]; nextCursor: string | null } {
  const visible = rows.slice(0, limit);
  const last = visible[visible.length - 1];
  const nextCursor = rows.length > limit && last ? encodeCursor(position(last).at, position(last).id) : null;
  return { items: visible.map(toItem), nextCursor };
}
