/**
 * The migration runner: forward-only SQL files from db/migrations, applied in name order, each in its
 * own transaction, recorded in public.schema_migrations with a SHA-256 checksum. Re-running is a
 * no-op; a file that was edited after it was applied is refused with an error naming it.
 *
 * A small runner on postgres.js rather than a framework: the whole job is ~80 lines, it needs no
 * second database driver, and it can run inside the CDK migration custom resource unchanged.
 *
 * Usage: `npm run db:migrate` with DATABASE_URL pointing at a superuser or the RDS master user.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import postgres from 'postgres';

export const MIGRATIONS_DIR = path.join(__dirname, 'migrations');

export class MigrationChecksumError extends Error {
  constructor(readonly file: string) {
    super(`Migration ${file} was changed after it was applied; migrations are forward-only: add a new file instead.`);
    this.name = 'MigrationChecksumError';
  }
}

export interface Migration {
  readonly name: string;
  readonly sql: string;
  readonly checksum: string;
}

export interface MigrateResult {
  readonly applied: string[];
  readonly skipped: string[];
}

export async function loadMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const names = (await readdir(dir)).filter((name) => /^\d{4}_[a-z0-9_]+\.sql$/.test(name)).sort();
  return Promise.all(
    names.map(async (name) => {
      const sql = await readFile(path.join(dir, name), 'utf8');
      return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    }),
  );
}

/** Applies pending migrations over a connection URL. Serialised across runners by an advisory lock. */
export async function migrate(
  databaseUrl: string,
  options: { dir?: string; log?: (line: string) => void } = {},
): Promise<MigrateResult> {
  const log = options.log ?? (() => undefined);
  const migrations = await loadMigrations(options.dir);
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => undefined });
  try {
    await sql`select pg_advisory_lock(hashtext('schema_migrations'))`;
    await sql`
      create table if not exists public.schema_migrations (
        name text primary key,
        checksum text not null,
        applied_at timestamptz not null default now()
      )`;
    const applied = new Map(
      (await sql<{ name: string; checksum: string }[]>`select name, checksum from public.schema_migrations`).map(
        (row) => [row.name, row.checksum] as const,
      ),
    );
    const result: MigrateResult = { applied: [], skipped: [] };
    for (const migration of migrations) {
      const checksum = applied.get(migration.name);
      if (checksum !== undefined) {
        if (checksum !== migration.checksum) throw new MigrationChecksumError(migration.name);
        result.skipped.push(migration.name);
        continue;
      }
      await sql.begin(async (tx) => {
        await tx`insert into public.schema_migrations (name, checksum) values (${migration.name}, ${migration.checksum})`;
        await tx.unsafe(migration.sql);
      });
      result.applied.push(migration.name);
      log(`applied ${migration.name}`);
    }
    await sql`select pg_advisory_unlock(hashtext('schema_migrations'))`;
    return result;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

async function main(): Promise<void> {
  const url = process.env.DATABASE_URL;
  if (!url) {
    console.error('DATABASE_URL is not set: point it at a superuser or the RDS master user.');
    process.exit(2);
  }
  try {
    const result = await migrate(url, { log: (line) => console.log(line) });
    console.log(`migrations: ${result.applied.length} applied, ${result.skipped.length} already applied`);
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(1);
  }
}

if (require.main === module) void main();
