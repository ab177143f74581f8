import { randomUUID } from 'node:crypto';
import { route, type RouteContext, type WithStorage } from '../core/handler';
import { routes } from '../routes';
import { created, type Reply } from '../core/http';
import { consume } from '../core/metering';
import { storage as containerStorage } from '../core/storage';
import { toDocument, type DocumentRow } from './document';

/** The body, as validated against `routes.createDocument.body` by the wrapper before this runs. */
export interface CreateDocumentBody {
  readonly name: string;
  readonly contentType: string;
  readonly sizeBytes: number;
}

/**
 * Creates the document row (status pending) and answers a presigned PUT bound to its content type and
 * size. The document and storage quotas are taken in the same transaction: over quota, nothing is written.
 * The upload is presigned (an STS call) before the quota moves lock the tenant's counter rows: no AWS call
 * runs while they are held.
 */
export async function work({ tx, body, tenantId, userId, audit, storage }: RouteContext<CreateDocumentBody> & WithStorage): Promise<Reply> {
  const { name, sizeBytes } = body;
  // Media types are case-insensitive; stored in one case so that equal types compare equal.
  const contentType = body.contentType.toLowerCase();
  const id = randomUUID();
  audit({ id });
  const upload = await storage.presignUpload(id, { contentType, sizeBytes });

  // Pipelined: both quota moves and the insert travel together; a TS429 aborts the insert too.
  const [, , [row]] = await Promise.all([
    consume(tx, 'documents', 1),
    consume(tx, 'storage_bytes', sizeBytes),
    tx<DocumentRow[]>`
      insert into app.documents (tenant_id, id, name, content_type, size_bytes, created_by)
      values (${tenantId}, ${id}, ${name}, ${contentType}, ${sizeBytes}, ${userId})
      returning id, tenant_id, name, content_type, size_bytes, status, created_by, created_at`,
  ]);
  return created({ document: toDocument(row!), upload }, `/api/${tenantId}/documents/${id}`);
}

export const handler = route(routes.createDocument, work, { storage: containerStorage });
