import { route, type RouteContext, type WithStorage } from '../core/handler';
import { routes } from '../routes';
import { ForbiddenError, NotFoundError } from '../core/errors';
import { noContent, type Reply } from '../core/http';
import { consume } from '../core/metering';
import { storage as containerStorage } from '../core/storage';

/**
 * Deletes a document (org_admin; a user only what they created), gives its quota back, and deletes the
 * object last, so that a refused or failed request leaves both in place.
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
  await Promise.all([
    tx`delete from app.documents where tenant_id = ${tenantId} and id = ${documentId}`,
    consume(tx, 'documents', -1),
    consume(tx, 'storage_bytes', -Number(doc.size_bytes)),
  ]);
  await storage.delete(documentId);
  return noContent();
}

export const handler = route(routes.deleteDocument, work, { storage: containerStorage });
