/**
 * `npm run storage:reconcile [-- --tenant <id>] [--after-seconds <n>]`: runs the storage reconciler
 * (functions/documents/reconcile.ts) once, as the deployed schedule does: removes abandoned uploads
 * (pending documents older than STORAGE_RECONCILE_AFTER_SECONDS, default 3600, at least 900) with their
 * quota, and objects without a document, each tenant with its own scoped storage. One line per tenant:
 *
 *   acme: 1 abandoned uploads removed (1024 bytes released), 0 completed, 1 orphan objects deleted (6 bytes)
 *
 * Settings: the environment (DATABASE_URL of app_runtime, TENANT_BUCKET, TENANT_ACCESS_ROLE_ARN,
 * AWS_ENDPOINT_URL…, as functions/core/config.ts reads them) when DATABASE_URL is set, else the running
 * local stack's (`npm start`). Exit 2 for bad arguments or no stack; 1 when a tenant could not be reconciled.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { ENV, parseBackgroundConfig, parseConfig } from '../functions/core/config';
import { createSql } from '../functions/core/db';
import { createTenantStorage } from '../functions/core/storage';
import { reconcilableTenants, reconcileTenant, reconciliationLine } from '../functions/documents/reconcile';
import { STACK_FILE, type StackFile } from './stack/stack-file';

const USAGE = 'Usage: npm run storage:reconcile [-- --tenant <id>] [--after-seconds <n>]';

function exit(code: 1 | 2, line: string): never {
  process.stderr.write(`${line}\n`);
  process.exit(code);
}

async function environment(): Promise<Record<string, string | undefined>> {
  if (process.env.DATABASE_URL) return process.env;
  try {
    const file = JSON.parse(await readFile(STACK_FILE, 'utf8')) as StackFile;
    if (file.environment) return file.environment;
  } catch {
    // no running stack
  }
  exit(2, 'No database: start the local stack (`npm start`) or set DATABASE_URL (app_runtime) and the storage settings.');
}

async function main(): Promise<void> {
  let values: { tenant?: string; 'after-seconds'?: string } = {};
  try {
    ({ values } = parseArgs({ options: { tenant: { type: 'string' }, 'after-seconds': { type: 'string' } }, strict: true, allowPositionals: false }));
  } catch (error) {
    exit(2, `${error instanceof Error ? error.message : String(error)}. ${USAGE}`);
  }
  let config;
  let afterSeconds: number;
  try {
    const env = { ...(await environment()), ...(values['after-seconds'] === undefined ? {} : { [ENV.storageReconcileAfterSeconds]: values['after-seconds'] }) };
    config = parseConfig(env);
    afterSeconds = parseBackgroundConfig(env).reconcileAfterSeconds;
  } catch (error) {
    exit(2, `${error instanceof Error ? error.message : String(error)}. ${USAGE}`);
  }
  const { bucket, tenantAccessRoleArn } = config.storage;
  if (!bucket || !tenantAccessRoleArn) exit(2, 'TENANT_BUCKET and TENANT_ACCESS_ROLE_ARN are required.');

  const db = createSql(config.database, config.aws, { max: 1 });
  const deps = {
    db,
    afterSeconds,
    storage: createTenantStorage({
      bucket,
      roleArn: tenantAccessRoleArn,
      region: config.aws.region,
      endpoint: config.aws.endpoint,
      credentialSeconds: config.storage.credentialSeconds,
      refreshBeforeSeconds: config.storage.refreshBeforeSeconds,
      presignSeconds: config.storage.presignSeconds,
    }),
  };
  let failed = 0;
  try {
    const tenants = values.tenant === undefined ? await reconcilableTenants(db) : [values.tenant];
    if (values.tenant !== undefined && !(await reconcilableTenants(db)).includes(values.tenant)) {
      exit(2, `No tenant ${values.tenant} that can hold documents.`);
    }
    for (const tenantId of tenants) {
      try {
        process.stdout.write(`${reconciliationLine(await reconcileTenant(deps, tenantId))}\n`);
      } catch (error) {
        failed++;
        process.stdout.write(`${tenantId}: FAILED ${error instanceof Error ? error.message : String(error)}\n`);
      }
    }
  } catch (error) {
    exit(2, `Could not reconcile: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    await db.end({ timeout: 2 });
  }
  if (failed > 0) exit(1, `${failed} tenant(s) could not be reconciled; run again.`);
}

void main();
