/**
 * A Postgres server for benchmarks, with scratch databases that the benchmark fills as it likes.
 *
 * Without DATABASE_URL: embedded Postgres 17 on a free port in a fresh temporary directory, removed at
 * `stop()`. With DATABASE_URL (a superuser or the RDS master user): that server; the scratch databases
 * are created there, dropped at `stop()`, and the login roles get a password, as the Jest global setup
 * does. Each scratch database is migrated with the project's migrations, so it has the real schema,
 * roles, grants and policies.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { migrate } from '../../../db/migrate';
import { freePort } from '../../../bin/stack/ports';
import { setRolePasswords, startEmbeddedPostgres } from '../../../bin/stack/postgres';

export interface ScratchDatabase {
  readonly name: string;
  /** Superuser: fixtures and baselines only (bypasses row-level security). */
  readonly adminUrl: string;
  /** The role every Lambda logs in as. */
  readonly runtimeUrl: string;
}

export interface BenchPostgres {
  /** Where the server comes from, for the report. */
  readonly source: 'embedded' | 'DATABASE_URL';
  /**
   * Creates a fresh, migrated database (dropping one of the same name first); `migrationsDir` applies
   * another set of migrations (e.g. without the newest, for a before/after comparison).
   */
  createDatabase(name: string, options?: { migrationsDir?: string }): Promise<ScratchDatabase>;
  /** Drops the scratch databases (external server) or stops and removes the embedded one. */
  stop(): Promise<void>;
}

function withDatabase(url: string, database: string, credentials?: { user: string; password: string }): string {
  const next = new URL(url);
  next.pathname = `/${database}`;
  if (credentials) {
    next.username = credentials.user;
    next.password = credentials.password; // the URL setter percent-encodes
  }
  return next.toString();
}

/**
 * `durable`: an embedded server keeps fsync on (Postgres's default, as on RDS) instead of off. Ignored with
 * DATABASE_URL, whose server runs as it is configured (a benchmark reports its settings).
 */
export async function startBenchPostgres(
  log: (line: string) => void = () => undefined,
  options: { durable?: boolean } = {},
): Promise<BenchPostgres> {
  const external = process.env.DATABASE_URL;
  let serverAdminUrl: string;
  let stopServer: () => Promise<void>;
  if (external) {
    serverAdminUrl = external;
    stopServer = async () => undefined;
  } else {
    const root = await mkdtemp(path.join(os.tmpdir(), 'tsb-bench-'));
    await chmod(root, 0o755); // the postgres system user must traverse it
    const handle = await startEmbeddedPostgres({ dir: path.join(root, 'pg'), port: await freePort(), persistent: false, durable: options.durable }).catch(
      async (error: unknown) => {
        // The server stopped itself; its scratch directory goes too.
        await rm(root, { recursive: true, force: true });
        throw error;
      },
    );
    serverAdminUrl = handle.adminUrl;
    stopServer = async () => {
      await handle.stop();
      await rm(root, { recursive: true, force: true });
    };
  }

  const rolePassword = randomBytes(18).toString('hex');
  const created: string[] = [];
  const server = postgres(serverAdminUrl, { max: 1, onnotice: () => undefined });

  return {
    source: external ? 'DATABASE_URL' : 'embedded',
    async createDatabase(name, options = {}) {
      // Identifiers go through the driver's helper; CREATE/DROP DATABASE take no bind parameters.
      await server`drop database if exists ${server(name)} with (force)`;
      await server`create database ${server(name)}`;
      created.push(name);
      const adminUrl = withDatabase(serverAdminUrl, name);
      await migrate(adminUrl, { dir: options.migrationsDir });
      await setRolePasswords(adminUrl, rolePassword);
      log(`database ${name} created and migrated`);
      return { name, adminUrl, runtimeUrl: withDatabase(serverAdminUrl, name, { user: 'app_runtime', password: rolePassword }) };
    },
    async stop() {
      try {
        if (external) for (const name of created) await server`drop database if exists ${server(name)} with (force)`;
      } finally {
        await server.end({ timeout: 5 });
        await stopServer();
      }
    },
  };
}
