/**
 * What every benchmark script shares: its settings from the environment, its progress log, and a
 * database client configured the way a Lambda's is (`createSql` from the parsed configuration).
 */
import { parseConfig } from '../../../functions/core/config';
import { writeBenchmarkSection } from './benchmarks-md';
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

/**
 * Prints a bench's section and, for a full-size run only, rewrites it in BENCHMARKS.md (a smaller smoke
 * run must never replace the recorded figures).
 */
export async function publishSection(heading: string, body: string, full: boolean, log: (line: string) => void, smaller: string): Promise<void> {
  process.stdout.write(`\n${heading}\n\n${body}\n`);
  if (full) {
    await writeBenchmarkSection(heading, body);
    log('BENCHMARKS.md: section updated');
  } else {
    log(`smaller than ${smaller}: BENCHMARKS.md left alone`);
  }
}

/** Runs a bench's main, printing a failure and exiting 1 (a bench is a script, not a test). */
export function run(main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exit(1);
  });
}
