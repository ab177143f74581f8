/**
 * `npm run billing:close-period -- --period YYYY-MM`: closes one ended UTC calendar month, writing one
 * invoice per tenant into app.invoices (idempotent: a re-run writes nothing new and prints the same
 * totals), and prints each tenant's invoice and the totals per currency.
 *
 * DATABASE_URL: a URL for the billing role `app_billing`, or for a superuser (the close then runs
 * as app_billing through a transaction-local `SET LOCAL ROLE`). Exit codes: 0 done; 2 malformed,
 * current or future period, or bad arguments (one line on stderr); 1 anything else (one line).
 */
import postgres from 'postgres';
import { formatAmount } from '../functions/billing/charges';
import { assertPeriodEnded, closePeriod, parsePeriod, PeriodError, type ClosePeriodResult } from '../functions/billing/close-period';

class UsageError extends Error {}

const USAGE = 'usage: npm run billing:close-period -- --period YYYY-MM';

function periodArgument(argv: readonly string[]): string {
  let period: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--period' && i + 1 < argv.length) period = argv[++i];
    else if (arg.startsWith('--period=')) period = arg.slice('--period='.length);
    else throw new UsageError(`unexpected argument ${JSON.stringify(arg)}; ${USAGE}`);
  }
  if (period === undefined) throw new UsageError(`--period is required; ${USAGE}`);
  return period;
}

function report(result: ClosePeriodResult): string {
  const out = [`period ${result.period}: ${result.invoices.length} invoices (${result.invoices.filter((i) => i.written).length} written by this run)`];
  const width = Math.max(6, ...result.invoices.map((i) => i.tenantId.length));
  for (const invoice of result.invoices) {
    out.push(`  ${invoice.tenantId.padEnd(width)}  ${invoice.planId.padEnd(12)} ${invoice.currency} ${formatAmount(invoice.amountMicros).padStart(14)}`);
  }
  for (const total of result.totals) {
    out.push(`total ${total.currency} ${formatAmount(total.amountMicros)} over ${total.invoices} invoices`);
  }
  if (result.totals.length === 0) out.push('total: no invoices (no tenant existed before the period ended)');
  return out.join('\n');
}

async function main(argv: readonly string[]): Promise<number> {
  let periodKey: string;
  try {
    periodKey = periodArgument(argv);
    // Fail fast on this machine's clock; closePeriod checks again by the database's clock.
    assertPeriodEnded(parsePeriod(periodKey), new Date());
  } catch (error) {
    if (error instanceof UsageError || error instanceof PeriodError) {
      process.stderr.write(`billing:close-period: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  const url = process.env.DATABASE_URL;
  if (!url) {
    process.stderr.write('billing:close-period: DATABASE_URL is not set (a URL for app_billing or a superuser)\n');
    return 1;
  }
  const sql = postgres(url, { max: 1, onnotice: () => undefined, connect_timeout: 10 });
  try {
    process.stdout.write(`${report(await closePeriod(sql, periodKey))}\n`);
    return 0;
  } catch (error) {
    if (error instanceof PeriodError) {
      process.stderr.write(`billing:close-period: ${error.message}\n`);
      return 2;
    }
    // One line, never a stack trace or a connection string.
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
    process.stderr.write(`billing:close-period: failed: ${message}\n`);
    return 1;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`billing:close-period: failed: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}\n`);
    process.exitCode = 1;
  },
);
