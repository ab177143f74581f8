/**
 * The storage reconciler deployed: an EventBridge schedule runs it (lib/constructs/storage-reconciler.ts).
 * It logs in as the runtime role and reaches each tenant's objects only through that tenant's scoped
 * STS session, like the document routes; one log line per tenant with its counts.
 */
import { backgroundConfig } from '../core/config';
import { sql } from '../core/db';
import { logger } from '../core/observability';
import { storage } from '../core/storage';
import { reconcileStorage, reconciliationLine } from './reconcile';

export async function handler(): Promise<{ tenants: number; abandonedUploads: number; orphanObjects: number }> {
  const results = await reconcileStorage(
    { db: sql(), storage: storage(), afterSeconds: backgroundConfig().reconcileAfterSeconds },
    { onTenant: (r) => logger.info(reconciliationLine(r), { tenant_id: r.tenantId, reconciliation: r }) },
  );
  return {
    tenants: results.length,
    abandonedUploads: results.reduce((n, r) => n + r.abandonedUploads, 0),
    orphanObjects: results.reduce((n, r) => n + r.orphanObjects, 0),
  };
}
