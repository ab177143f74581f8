/**
 * `npm run audit:verify [-- --tenant <id>]`: verifies the audit hash chain of every tenant (or one) and
 * prints one line per tenant: verified events, head hash, unsealed events (written within the sealer's
 * window; not a failure). Exit 1 when a chain does not verify, naming the tenant and the first bad
 * event; exit 2 for bad arguments, an unknown tenant or no database. Reads only; seals nothing.
 *
 * Database: DATABASE_URL (the owner/master user or app_control), else the running local stack's
 * embedded Postgres (`.local/postgres`: its port from postmaster.pid, its password from cluster.json).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { UnknownTenantError, verificationLine, verifyAuditChains } from './audit/chain';
import { LOCAL_DIR } from './stack/stack-file';

function exit(code: 1 | 2, line: string): never {
  process.stderr.write(`${line}\n`);
  process.exit(code);
}

/** The superuser URL of the local stack's database, while `npm start` runs. */
async function localDatabaseUrl(): Promise<string | undefined> {
  const dir = path.join(LOCAL_DIR, 'postgres');
  try {
    // postmaster.pid exists only while the server runs; its 4th line is the port.
    const port = (await readFile(path.join(dir, 'data', 'postmaster.pid'), 'utf8')).split('\n')[3]?.trim();
    const { adminPassword } = JSON.parse(await readFile(path.join(dir, 'cluster.json'), 'utf8')) as { adminPassword: string };
    if (!port || !/^\d+$/.test(port)) return undefined;
    return `postgres://postgres:${encodeURIComponent(adminPassword)}@127.0.0.1:${port}/app`;
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  let tenant: string | undefined;
  try {
    ({ values: { tenant } } = parseArgs({ options: { tenant: { type: 'string' } }, strict: true, allowPositionals: false }));
  } catch (error) {
    exit(2, `${error instanceof Error ? error.message : String(error)}. Usage: npm run audit:verify [-- --tenant <id>]`);
  }
  const url = process.env.DATABASE_URL || (await localDatabaseUrl());
  if (!url) exit(2, 'No database: start the local stack (`npm start`) or set DATABASE_URL.');

  const sql = postgres(url, { max: 1, onnotice: () => undefined });
  try {
    const results = await verifyAuditChains(sql, { tenantId: tenant });
    for (const result of results) process.stdout.write(`${verificationLine(result)}\n`);
    const failed = results.filter((r) => r.failure);
    if (failed.length > 0) exit(1, `audit chain broken in ${failed.map((r) => r.tenantId).join(', ')}`);
  } catch (error) {
    if (error instanceof UnknownTenantError) exit(2, error.message);
    exit(2, `Could not verify: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    await sql.end({ timeout: 2 });
  }
}

void main();
