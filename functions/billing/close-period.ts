/**
 * The billing period close (control plane): one invoice per tenant for one ended UTC calendar month,
 * written into `app.invoices` idempotently. Run by `bin/billing-close-period.ts`; takes a scoped `sql`
 * and reads no environment, so tests call it directly.
 *
 * What an invoice is computed from, and when:
 *  - the tenant's plan (prices, currency) **as it stands at close time**: a plan change during the
 *    month bills the whole month at the plan held when the period is closed (no proration);
 *  - the monthly metrics (`api_requests`, `ai_tokens`) from the usage counters of that period;
 *  - the standing totals (`documents`, `storage_bytes`) from the `'total'` counters **at close time**
 *    (they carry no history), so closing promptly after the month ends bills what the tenant held then.
 * Tenants created after the period ended get no invoice for it; every other tenant gets one, with the
 * base price even when it used nothing. A tenant that already has an invoice for the period keeps it
 * unchanged: re-running writes nothing and reports the same totals, read back from the stored invoices.
 */
import type { Sql } from '../core/db';
import { METRICS, type Metric } from '../core/metrics';
import { chargeLines, isMonthly, totalMicros, type ChargeLine, type PlanPrices } from './charges';

/** 'YYYY-MM', as stored in `app.invoices.period` and `app.usage_counters.period`. */
const PERIOD = /^(\d{4})-(0[1-9]|1[0-2])$/;

/** A period that is not 'YYYY-MM', or one that has not ended yet. The CLI exits 2 on it. */
export class PeriodError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export interface Period {
  /** 'YYYY-MM'. */
  readonly key: string;
  /** First instant of the month, UTC (inclusive). */
  readonly start: Date;
  /** First instant of the next month, UTC (exclusive). */
  readonly end: Date;
}

/** Parses 'YYYY-MM' into the UTC month it names. Throws PeriodError for anything else. */
export function parsePeriod(text: string): Period {
  const match = PERIOD.exec(text);
  if (!match) throw new PeriodError(`period must be YYYY-MM (a UTC calendar month), got ${JSON.stringify(text)}`);
  const year = Number(match[1]);
  const month = Number(match[2]) - 1;
  return { key: text, start: new Date(Date.UTC(year, month, 1)), end: new Date(Date.UTC(year, month + 1, 1)) };
}

/** Throws PeriodError unless `period` has ended at `now`: the current and future months cannot be closed. */
export function assertPeriodEnded(period: Period, now: Date): void {
  if (now.getTime() < period.end.getTime()) {
    const which = now.getTime() >= period.start.getTime() ? 'the current month' : 'in the future';
    throw new PeriodError(`period ${period.key} is ${which}; a period can be closed only after it has ended (${period.end.toISOString()})`);
  }
}

export interface Invoice {
  readonly tenantId: string;
  readonly period: string;
  readonly planId: string;
  readonly currency: string;
  readonly amountMicros: number;
  readonly lines: readonly ChargeLine[];
  /** True when this run wrote the invoice; false when it was already there. */
  readonly written: boolean;
}

export interface CurrencyTotal {
  readonly currency: string;
  readonly amountMicros: number;
  readonly invoices: number;
}

export interface ClosePeriodResult {
  readonly period: string;
  /** Every invoice of the period after the close (new and earlier ones), by tenant id. */
  readonly invoices: readonly Invoice[];
  /** One total per currency, by currency code. */
  readonly totals: readonly CurrencyTotal[];
}

interface TenantPlanRow {
  tenant_id: string;
  plan_id: string;
  prices: PlanPrices;
  currency: string;
}

interface CounterRow {
  tenant_id: string;
  metric: Metric;
  used: string;
}

interface InvoiceRow {
  tenant_id: string;
  period: string;
  plan_id: string;
  currency: string;
  amount_micros: string;
  lines: ChargeLine[];
}

/** Sums invoices per currency; amounts in different currencies are never added together. */
export function totalsOf(invoices: readonly Pick<Invoice, 'currency' | 'amountMicros'>[]): CurrencyTotal[] {
  const byCurrency = new Map<string, { amountMicros: number; invoices: number }>();
  for (const invoice of invoices) {
    const total = byCurrency.get(invoice.currency) ?? { amountMicros: 0, invoices: 0 };
    total.amountMicros += invoice.amountMicros;
    total.invoices += 1;
    byCurrency.set(invoice.currency, total);
  }
  return [...byCurrency]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([currency, total]) => ({ currency, ...total }));
}

/**
 * Closes `periodKey` ('YYYY-MM'): in ONE transaction as `app_billing` (the connecting user must be
 * app_billing or may become it: a superuser; `SET LOCAL ROLE` lasts only for this transaction), computes
 * each tenant's invoice with `chargeLines()` and inserts it unless one exists. The period must have
 * ended by the database's clock, else PeriodError.
 *
 * The period's monthly counters are read `FOR SHARE`, so a request of the last moments of the period
 * that is still committing its increment is waited for, not missed.
 */
export async function closePeriod(sql: Sql, periodKey: string): Promise<ClosePeriodResult> {
  const period = parsePeriod(periodKey);
  return sql.begin(async (tx) => {
    // Act under billing's own policies and grants (read, insert invoices), never as a superuser that bypasses RLS.
    await tx`set local role app_billing`;
    const [clock] = await tx<{ now: Date }[]>`select now() as now`;
    assertPeriodEnded(period, clock!.now);

    const [tenants, monthly, standing] = await Promise.all([
      tx<TenantPlanRow[]>`
        select t.id as tenant_id, p.id as plan_id, p.prices, p.currency
          from app.tenants t join app.plans p on p.id = t.plan_id
         where t.created_at < ${period.end}
         order by t.id`,
      tx<CounterRow[]>`
        select tenant_id, metric, used from app.usage_counters
         where period = ${period.key} and metric in ${tx(METRICS.filter(isMonthly))}
           for share`,
      tx<CounterRow[]>`
        select tenant_id, metric, used from app.usage_counters
         where period = 'total' and metric in ${tx(METRICS.filter((m) => !isMonthly(m)))}`,
    ]);

    const usage = new Map<string, Partial<Record<Metric, number>>>();
    for (const row of [...monthly, ...standing]) {
      const counters = usage.get(row.tenant_id) ?? {};
      counters[row.metric] = Number(row.used);
      usage.set(row.tenant_id, counters);
    }
    const drafts = tenants.map((t) => {
      const lines = chargeLines(t.prices, usage.get(t.tenant_id) ?? {});
      return {
        tenant_id: t.tenant_id,
        period: period.key,
        plan_id: t.plan_id,
        currency: t.currency,
        amount_micros: totalMicros(lines),
        lines,
      };
    });

    // One statement for every tenant; an invoice already there (an earlier or concurrent close) wins.
    const inserted = await tx<{ tenant_id: string }[]>`
      insert into app.invoices (tenant_id, period, plan_id, currency, amount_micros, lines)
      select r.tenant_id, r.period, r.plan_id, r.currency, r.amount_micros, r.lines
        from jsonb_to_recordset(${tx.json(drafts as never)}) as r(
               tenant_id text, period text, plan_id text, currency text, amount_micros bigint, lines jsonb)
      on conflict (tenant_id, period) do nothing
      returning tenant_id`;
    const written = new Set(inserted.map((r) => r.tenant_id));

    const stored = await tx<InvoiceRow[]>`
      select tenant_id, period, plan_id, currency, amount_micros, lines
        from app.invoices where period = ${period.key} order by tenant_id`;
    const invoices: Invoice[] = stored.map((row) => ({
      tenantId: row.tenant_id,
      period: row.period,
      planId: row.plan_id,
      currency: row.currency,
      amountMicros: Number(row.amount_micros),
      lines: row.lines,
      written: written.has(row.tenant_id),
    }));
    return { period: period.key, invoices, totals: totalsOf(invoices) };
  }) as Promise<ClosePeriodResult>;
}
