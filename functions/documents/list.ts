import { route, type RouteContext } from '../core/handler';
import { routes } from '../routes';
import { ok, type Reply } from '../core/http';
import { keyset, parsePage, type PositionColumns } from '../core/pagination';
import { toDocument, type DocumentRow } from './document';

/** The tenant's documents, newest first, a keyset page at a time. */
export async function work({ tx, query, tenantId }: RouteContext): Promise<Reply> {
  const page = keyset(tx, parsePage(query), { at: 'created_at', id: 'id', idType: 'uuid', order: 'newest first' });
  // The explicit tenant predicate lets the planner use the (tenant_id, created_at, id) index directly;
  // row-level security enforces the same condition regardless.
  const rows = await tx<(DocumentRow & PositionColumns)[]>`
    select id, tenant_id, name, content_type, size_bytes, status, created_by, created_at, ${page.position}
      from app.documents
     where tenant_id = ${tenantId} and ${page.after}
     order by ${page.orderBy}
     limit ${page.fetch}`;
  return ok(page.page(rows, toDocument));
}

export const handler = route(routes.listDocuments, work);
