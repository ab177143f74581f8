import { route, type RouteContext } from '../core/handler';
import { routes } from '../routes';
import { ok, type Reply } from '../core/http';
import { pageOf, parsePage } from '../core/pagination';
import { toDocument, type DocumentRow } from './document';

/** The tenant's documents, newest first, a keyset page at a time. */
export async function work({ tx, query, tenantId }: RouteContext): Promise<Reply> {
  const page = parsePage(query);
  // The explicit tenant predicate lets the planner use the (tenant_id, created_at, id) index directly;
  // row-level security enforces the same condition regardless.
  const rows = await tx<(DocumentRow & { cursor_at: string })[]>`
    select id, tenant_id, name, content_type, size_bytes, status, created_by, created_at,
           to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as cursor_at
      from app.documents
     where tenant_id = ${tenantId}
       and ${page.after ? tx`(created_at, id) < (${page.after.at}::timestamptz, ${page.after.id}::uuid)` : tx`true`}
     order by created_at desc, id desc
     limit ${page.limit + 1}`;
  return ok(pageOf(rows, page.limit, (r) => ({ at: r.cursor_at, id: r.id }), toDocument));
}

export const handler = route(routes.listDocuments, work);
