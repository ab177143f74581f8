import { route, type RouteContext, type WithStorage } from '../core/handler';
import { routes } from '../routes';
import { ForbiddenError, NotFoundError } from '../core/errors';
import { noContent, type Reply } from '../core/http';
import { consume } from '../core/metering';
import { storage as containerStorage } from '../core/storage';

/**
 * Deletes a document (org_admin; a user only what they created) and gives its quota back. The object is
 * deleted while only the document's own row is locked, before the quota moves lock the tenant's counter
 * rows (no S3 call while they are held): a refused request leaves both in place; if the transaction fails
 * after the object is gone, the row stays and a retry completes the delete (deleting an absent object
 * succeeds).
 */
export async function work({ tx, params, tenantId, userId, role, storage }: RouteContext & WithStorage): Promise<Reply> {
  const documentId = params.documentId!; // a UUID: validated against the manifest's params schema
  const [doc] = await tx<{ created_by: string; size_bytes: string }[]>`
    select created_by, size_bytes from app.documents
     where tenant_id = ${tenantId} and id = ${documentId} for update`;
  if (!doc) throw new NotFoundError('Not found.');
  if (role !== 'org_admin' && doc.created_by !== userId) {
    throw new ForbiddenError('Only an org_admin or the document\'s creator may delete it.');
  }
  await storage.delete(documentId);
  await Promise.all([
    tx`delete from app.documents where tenant_id = ${tenantId} and id = ${documentId}`,
    consume(tx, 'documents', -1),
    consume(tx, 'storage_bytes', -Number(doc.size_bytes)),
  ]);
  return noContent();
}

export const handler = route(routes.deleteDocument, work, { storage: containerStorage });
