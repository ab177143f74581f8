import { route, type RouteContext, type WithStorage } from '../core/handler';
import { routes } from '../routes';
import { ConflictError, NotFoundError } from '../core/errors';
import { ok, type Reply } from '../core/http';
import { storage as containerStorage } from '../core/storage';
import { toDocument, type DocumentRow } from './document';

/**
 * A document and, once its bytes have arrived, a presigned download. Every GET looks at the object first
 * (one S3 round trip): a pending document becomes available when the object is there with the promised
 * size; an available document whose object is gone answers 409 rather than a URL that leads nowhere.
 */
export async function work({ tx, params, tenantId, storage: files }: RouteContext & WithStorage): Promise<Reply> {
  const documentId = params.documentId!; // a UUID: validated against the manifest's params schema
  const [found] = await tx<DocumentRow[]>`
    select id, tenant_id, name, content_type, size_bytes, status, created_by, created_at
      from app.documents where tenant_id = ${tenantId} and id = ${documentId}`;
  if (!found) throw new NotFoundError('Not found.');

  let row = found;
  const object = await files.head(documentId);
  if (row.status === 'available' && !object) {
    throw new ConflictError("The document's bytes are missing from storage; delete the document and upload it again.");
  }
  if (row.status === 'pending') {
    if (object && object.sizeBytes === Number(row.size_bytes)) {
      const [updated] = await tx<DocumentRow[]>`
        update app.documents set status = 'available', uploaded_at = now()
         where tenant_id = ${tenantId} and id = ${documentId} and status = 'pending'
        returning id, tenant_id, name, content_type, size_bytes, status, created_by, created_at`;
      row = updated ?? { ...row, status: 'available' };
    }
  }
  const download =
    row.status === 'available'
      ? await files.presignDownload(documentId, { fileName: row.name, contentType: row.content_type })
      : null;
  return ok({ document: toDocument(row), download });
}

export const handler = route(routes.getDocument, work, { storage: containerStorage });
