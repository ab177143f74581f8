/**
 * What every benchmark script shares: its settings from the environment, its progress log, and a
 * database client configured the way a Lambda's is (`createSql` from the parsed configuration).
 */
import { parseConfig } from '../../../functions/core/config';
import { createSql, type Sql } from '../../../functions/core/db';

/** A positive integer from the environment (e.g. BENCH_ITERATIONS), or the default. */
export function positiveInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got "${raw}"`);
  return value;
}

/** A progress logger to stderr, prefixed with the bench's name and the time. */
export function benchLog(name: string): (line: string) => void {
  return (line) => process.stderr.write(`[${name} ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

/** A client configured like a Lambda's: the configuration defaults, with this URL, pool and prepare. */
export function lambdaLikeClient(url: string, options: { poolMax?: number; prepare?: boolean } = {}): Sql {
  const { database, aws } = parseConfig({});
  return createSql(
    { ...database, url, poolMax: options.poolMax ?? 1, prepare: options.prepare ?? true, connectTimeoutSeconds: 10 },
    { ...aws, region: 'local' },
  );
}
