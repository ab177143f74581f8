/**
 * Export jobs as the local job runner runs them: `runExport` with the container's PII keys (KMS) and
 * the tenant's scoped objects (STS), built from the environment the local stack set for the handlers.
 */
import { pii } from '../../functions/core/pii';
import { tenantObjects } from '../../functions/core/tenant-objects';
import { runExport } from '../../functions/tenants/export';
import type { JobHandler } from './job-runner';

export function exportHandler(): JobHandler {
  return (db, jobId) => runExport({ db, pii: pii(), objects: (tenantId, userId) => tenantObjects().forTenant(tenantId, userId) }, jobId);
}
