/**
 * `npm run bench:offboarding`: how long offboarding a tenant takes locally (embedded Postgres 17, moto,
 * a versioned bucket) for tenants of 100 and 1,000 documents (each with its object and a member per 10
 * documents), per step, and the ratio between the two sizes: what grows with tenant size.
 * Not a test: prints figures. Starts and stops its own Postgres and moto_server.
 */
import { randomUUID } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PutBucketVersioningCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import postgres from 'postgres';
import { provisionStorage } from '../../bin/stack/aws';
import { provisionIdentity, provisionPiiKey } from '../../bin/stack/identity';
import { startEmulator } from '../../bin/stack/moto';
import { freePort } from '../../bin/stack/ports';
import { startEmbeddedPostgres } from '../../bin/stack/postgres';
import { cognitoClient, createUserDirectory } from '../../functions/core/cognito';
import { withTenant } from '../../functions/core/db';
import { createPii, kmsClient } from '../../functions/core/pii';
import { createTenantObjects } from '../../functions/core/tenant-objects';
import { addMember } from '../../functions/members/membership';
import { onboardTenant } from '../../functions/tenants/onboarding';
import { runOffboarding, startOffboarding } from '../../functions/tenants/offboarding';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
// The emulator takes any keys; the STS client of tenant objects uses the default provider chain.
process.env.AWS_ACCESS_KEY_ID ??= 'bench';
process.env.AWS_SECRET_ACCESS_KEY ??= 'bench';

async function main(): Promise<void> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'tsb-offboard-'));
  await chmod(root, 0o755);
  const [pg, emulator] = await Promise.all([
    startEmbeddedPostgres({ dir: path.join(root, 'pg'), port: await freePort(), persistent: false }),
    startEmulator(),
  ]);
  const admin = postgres(pg.adminUrl, { max: 4, onnotice: () => undefined });
  const control = postgres(pg.roleUrl('app_control'), { max: 4, onnotice: () => undefined });
  const runtime = postgres(pg.roleUrl('app_runtime'), { max: 4, onnotice: () => undefined });
  const region = 'us-east-1';
  const credentials = { accessKeyId: 'bench', secretAccessKey: 'bench' };
  const access = { endpoint: emulator.endpoint, region, credentials };
  const clients = { region, endpoint: emulator.endpoint, credentials };
  const s3 = new S3Client({ ...clients, forcePathStyle: true });
  const kms = kmsClient(clients);
  const cognito = cognitoClient(clients);
  try {
    const identity = await provisionIdentity(access, { poolName: 'bench', users: [], password: 'Bench-Passw0rd-1' });
    const keyId = await provisionPiiKey(access, 'alias/bench');
    const storage = await provisionStorage({ endpoint: emulator.endpoint, region, bucket: 'bench-offboarding', roleName: 'bench', credentials });
    await s3.send(new PutBucketVersioningCommand({ Bucket: storage.bucket, VersioningConfiguration: { Status: 'Enabled' } }));
    const pii = createPii({ kms, keyId, cacheSeconds: 300 });
    const directory = createUserDirectory({ cognito, userPoolId: identity.userPoolId, localPassword: 'Bench-Passw0rd-1' });
    const objects = createTenantObjects({ bucket: storage.bucket, roleArn: storage.roleArn, region, endpoint: emulator.endpoint });
    const operator = { userId: randomUUID(), role: 'superadmin' as const, requestId: 'bench' };
    await admin`insert into app.platform_operators (user_id) values (${operator.userId})`;
    const deps = { db: control, pii, directory, objects: (t: string, u: string) => objects.forTenant(t, u) };

    const results: { documents: number; totalMs: number; steps: Record<string, number> }[] = [];
    for (const documents of [100, 1000]) {
      const id = `bench-${documents}`;
      const first = (await onboardTenant(deps, operator, { id, name: id, planId: 'enterprise', admin: { email: `admin@${id}.example` } })).admin;
      const ctx = { tenantId: id, userId: first.userId, role: 'org_admin' as const };
      for (let i = 1; i < documents / 10; i++) {
        const requestId = randomUUID();
        await withTenant(runtime, { ...ctx, requestId }, (tx) =>
          addMember({ ...ctx, requestId, tx }, { pii, directory }, { email: `m${i}@${id}.example`, role: 'user' }),
        );
      }
      const ids = Array.from({ length: documents }, () => randomUUID());
      await admin`insert into app.documents ${admin(ids.map((d) => ({ tenant_id: id, id: d, name: 'f.txt', content_type: 'text/plain', size_bytes: 4, status: 'available', created_by: first.userId })))}`;
      for (let i = 0; i < ids.length; i += 20) {
        await Promise.all(ids.slice(i, i + 20).map((d) => s3.send(new PutObjectCommand({ Bucket: storage.bucket, Key: `tenants/${id}/documents/${d}`, Body: 'data' }))));
      }

      const started = performance.now();
      const { jobId } = await startOffboarding(control, operator, id);
      const marks: Record<string, number> = {};
      const job = await runOffboarding(deps, jobId);
      const totalMs = performance.now() - started;
      const r = job.result as Record<string, string>;
      const at = (k: string) => (r[k] ? Date.parse(r[k]) : NaN);
      marks.objects = at('objectsDeletedAt') - at('startedAt');
      marks.rows = at('rowsDeletedAt') - at('objectsDeletedAt');
      marks.key = at('keyDestroyedAt') - at('rowsDeletedAt');
      marks.users = at('usersDeletedAt') - at('keyDestroyedAt');
      if (job.status !== 'done') throw new Error(`offboarding of ${id} ended ${job.status}: ${job.lastError}`);
      results.push({ documents, totalMs, steps: marks });
      console.log(`offboarding ${documents} documents, ${documents / 10} members: ${totalMs.toFixed(0)} ms total; steps ms: ${JSON.stringify(marks)}`);
    }
    const [small, large] = results;
    console.log(
      `ratio 1000/100 documents: total ${(large!.totalMs / small!.totalMs).toFixed(2)}, objects ${(large!.steps.objects! / small!.steps.objects!).toFixed(2)}, rows ${(large!.steps.rows! / small!.steps.rows!).toFixed(2)}, users ${(large!.steps.users! / small!.steps.users!).toFixed(2)}`,
    );
  } finally {
    s3.destroy();
    kms.destroy();
    cognito.destroy();
    await Promise.all([admin.end(), control.end(), runtime.end()]);
    await Promise.all([pg.stop(), emulator.stop()]);
    await rm(root, { recursive: true, force: true });
  }
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
