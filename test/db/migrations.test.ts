import { cp, mkdtemp, readdir, writeFile, appendFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { MIGRATIONS_DIR, migrate } from '../../db/migrate';
import { adminSql } from '../support/db';

describe('migration runner', () => {
  const admin = adminSql();
  const database = `migrations_${process.pid}_${Date.now()}`;
  let url: string;

  beforeAll(async () => {
    await admin`create database ${admin(database)}`;
    const u = new URL(process.env.TEST_ADMIN_DATABASE_URL!);
    u.pathname = `/${database}`;
    url = u.toString();
  });
  afterAll(async () => {
    await admin`drop database if exists ${admin(database)} with (force)`;
    await admin.end();
  });

  it('applies every migration once, and a second run is a no-op', async () => {
    const files = (await readdir(MIGRATIONS_DIR)).filter((f) => f.endsWith('.sql')).sort();
    const first = await migrate(url);
    const second = await migrate(url);
    expect(first.applied).toEqual(files);
    expect(second).toEqual({ applied: [], skipped: files });
    const db = postgres(url, { max: 1 });
    const recorded = await db<{ name: string }[]>`select name from public.schema_migrations order by name`;
    await db.end();
    expect(recorded.map((r) => r.name)).toEqual(files);
  });

  it('refuses an applied migration that was edited, naming the file', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'migrations-'));
    await cp(MIGRATIONS_DIR, dir, { recursive: true });
    await appendFile(path.join(dir, '0002_tenancy.sql'), '\n-- edited after it was applied\n');
    await expect(migrate(url, { dir })).rejects.toThrow(/0002_tenancy\.sql was changed after it was applied/);
  });

  it('applies a new migration after the applied ones', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'migrations-'));
    await cp(MIGRATIONS_DIR, dir, { recursive: true });
    await writeFile(path.join(dir, '9999_probe.sql'), 'SET LOCAL ROLE app_owner;\nCREATE TABLE app.migration_probe (id int);\n');
    const result = await migrate(url, { dir });
    expect(result.applied).toEqual(['9999_probe.sql']);
  });
});
