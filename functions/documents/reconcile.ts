/**
 * The storage reconciler: brings each tenant's stored bytes back under its counted bytes where an upload
 * or a delete went half-way. Per tenant, with that tenant's scoped storage and in that tenant's
 * row-level-security context (the runtime role, never a broader one):
 *
 *  1. Abandoned uploads: a `pending` document older than `afterSeconds` (at least the longest lifetime of
 *     an upload URL, so no URL issued for it can still store bytes). If its bytes did arrive with the
 *     promised size, the document becomes `available` (as a GET would have made it). Otherwise its key is
 *     deleted (every version, leaving the empty tombstone that refuses any later upload), then the row is
 *     deleted and its `documents` and `storage_bytes` quota given back, in one transaction with the audit
 *     event: the counters move exactly as a DELETE of the document moves them.
 *  2. Orphan objects: a key under `tenants/{id}/documents/` holding bytes whose document row does not
 *     exist (e.g. bytes that arrived after their document was removed). Its versions are deleted, leaving
 *     the tombstone. The key listing is read before the rows: a row is committed before its upload URL is
 *     handed out, so an object listed first always finds its row if it has one.
 *
 * A second run finds nothing to do. Keys that name no document id (none of our URLs write those) are
 * counted, never touched.
 */
import { randomUUID } from 'node:crypto';
import { withPlatform, withTenant, type RequestContext, type Sql, type Tx } from '../core/db';
import { consume } from '../core/metering';
import type { TenantStorageProvider } from '../core/storage';

/** The reconciler acts as no person: this id in the audit trail and the STS session of its storage. */
export const RECONCILER_USER_ID = '00000000-0000-4000-8000-00000000a11c';

export interface ReconcileDependencies {
  /** A client of the runtime role (app_runtime): tenant rows only through row-level security. */
  readonly db: Sql;
  readonly storage: TenantStorageProvider;
  /** A pending document older than this many seconds is an abandoned upload. */
  readonly afterSeconds: number;
}

export interface TenantReconciliation {
  readonly tenantId: string;
  /** Pending documents whose bytes never came: row, object versions and quota removed. */
  readonly abandonedUploads: number;
  /** Bytes of storage quota given back for them. */
  readonly releasedBytes: number;
  /** Pending documents whose bytes had arrived: now available. */
  readonly completedUploads: number;
  /** Keys with bytes and no document row: their versions deleted. */
  readonly orphanObjects: number;
  /** Bytes those keys held. */
  readonly orphanBytes: number;
  /** Keys under the documents prefix that name no document id (left alone). */
  readonly foreignKeys: number;
}

function actor(tenantId: string, requestId: string): RequestContext {
  return { tenantId, userId: RECONCILER_USER_ID, role: 'superadmin', requestId };
}

async function auditEvent(tx: Tx, ctx: RequestContext, action: string, resourceId: string, detail: Record<string, unknown>): Promise<void> {
  await tx`
    insert into app.audit_events (tenant_id, actor_user_id, actor_role, action, resource_type, resource_id, request_id, detail)
    values (${ctx.tenantId}, ${ctx.userId}, ${ctx.role}, ${action}, 'document', ${resourceId}, ${ctx.requestId}, ${tx.json(detail as never)})`;
}

/** The tenants whose storage is reconciled: every tenant that can still hold documents. */
export async function reconcilableTenants(db: Sql): Promise<string[]> {
  const rows = await withPlatform(db, { userId: RECONCILER_USER_ID, role: 'superadmin', requestId: `reconcile:${randomUUID()}` }, (tx) =>
    tx<{ id: string }[]>`select id from app.tenants where status in ('active', 'suspended') order by id`);
  return rows.map((r) => r.id);
}

/** Reconciles one tenant's storage with its document rows and counters. */
export async function reconcileTenant(deps: ReconcileDependencies, tenantId: string): Promise<TenantReconciliation> {
  const runId = `reconcile:${randomUUID()}`;
  const files = deps.storage.forTenant(tenantId, RECONCILER_USER_ID);
  let abandonedUploads = 0;
  let releasedBytes = 0;
  let completedUploads = 0;

  // 1. Abandoned uploads.
  const pending = await withTenant(deps.db, actor(tenantId, runId), (tx) => tx<{ id: string; size_bytes: string }[]>`
    select id, size_bytes from app.documents
     where tenant_id = ${tenantId} and status = 'pending'
       and created_at < now() - make_interval(secs => ${deps.afterSeconds})
     order by created_at, id`);
  for (const doc of pending) {
    const size = Number(doc.size_bytes);
    const object = await files.head(doc.id);
    if (object && object.sizeBytes === size) {
      const updated = await withTenant(deps.db, actor(tenantId, `${runId}:${doc.id}`), (tx) => tx`
        update app.documents set status = 'available', uploaded_at = now()
         where tenant_id = ${tenantId} and id = ${doc.id} and status = 'pending'`);
      completedUploads += updated.count;
      continue;
    }
    // The object first (no row lock is held across S3): a failure leaves the row for the next run.
    await files.delete(doc.id);
    const released = await withTenant(deps.db, actor(tenantId, `${runId}:${doc.id}`), async (tx) => {
      const [row] = await tx<{ size_bytes: string }[]>`
        select size_bytes from app.documents
         where tenant_id = ${tenantId} and id = ${doc.id} and status = 'pending' for update`;
      if (!row) return undefined;
      const bytes = Number(row.size_bytes);
      const ctx = actor(tenantId, `${runId}:${doc.id}`);
      await Promise.all([
        auditEvent(tx, ctx, 'storage.reconcile.abandoned_upload', doc.id, { sizeBytes: bytes }),
        tx`delete from app.documents where tenant_id = ${tenantId} and id = ${doc.id}`,
        consume(tx, 'documents', -1),
        consume(tx, 'storage_bytes', -bytes),
      ]);
      return bytes;
    });
    if (released !== undefined) {
      abandonedUploads++;
      releasedBytes += released;
    }
  }

  // 2. Orphan objects: the listing first, then the rows (see the module comment).
  const objects = await files.listDocumentObjects();
  const ids = new Set(
    (await withTenant(deps.db, actor(tenantId, runId), (tx) => tx<{ id: string }[]>`
      select id from app.documents where tenant_id = ${tenantId}`)).map((r) => r.id),
  );
  let orphanObjects = 0;
  let orphanBytes = 0;
  let foreignKeys = 0;
  for (const object of objects) {
    if (object.documentId === null) {
      foreignKeys++;
      continue;
    }
    if (object.storedBytes === 0 || ids.has(object.documentId)) continue;
    await files.delete(object.documentId);
    orphanObjects++;
    orphanBytes += object.storedBytes;
  }
  return { tenantId, abandonedUploads, releasedBytes, completedUploads, orphanObjects, orphanBytes, foreignKeys };
}

/** One line per tenant, for the command and the scheduled function's log. */
export function reconciliationLine(r: TenantReconciliation): string {
  return (
    `${r.tenantId}: ${r.abandonedUploads} abandoned uploads removed (${r.releasedBytes} bytes released), ` +
    `${r.completedUploads} completed, ${r.orphanObjects} orphan objects deleted (${r.orphanBytes} bytes)` +
    (r.foreignKeys > 0 ? `, ${r.foreignKeys} keys that name no document left alone` : '')
  );
}

/** Reconciles `tenants` (default: every tenant that can hold documents), one after the other. */
export async function reconcileStorage(
  deps: ReconcileDependencies,
  options: { readonly tenants?: readonly string[]; readonly onTenant?: (result: TenantReconciliation) => void } = {},
): Promise<TenantReconciliation[]> {
  const tenants = options.tenants ?? (await reconcilableTenants(deps.db));
  const results: TenantReconciliation[] = [];
  for (const tenantId of tenants) {
    const result = await reconcileTenant(deps, tenantId);
    options.onTenant?.(result);
    results.push(result);
  }
  return results;
}
