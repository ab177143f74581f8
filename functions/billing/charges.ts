/**
 * Estimated charges from a plan's prices and a period's usage. Integer micro-units throughout, so that
 * no floating-point rounding ever reaches an invoice. Shared by the billing route and the period close.
 */
import { METRICS, type Metric } from '../core/metrics';

export interface MetricPrice {
  readonly included: number;
  readonly unitSize: number;
  readonly unitPriceMicros: number;
}

export interface PlanPrices {
  readonly baseMicros: number;
  readonly [metric: string]: MetricPrice | number;
}

export interface ChargeLine {
  readonly metric: Metric | 'base';
  readonly quantity: number;
  readonly billableUnits: number;
  readonly amountMicros: number;
}

export function chargeLines(prices: PlanPrices, usage: Partial<Record<Metric, number>>): ChargeLine[] {
  const lines: ChargeLine[] = [{ metric: 'base', quantity: 1, billableUnits: 1, amountMicros: prices.baseMicros ?? 0 }];
  for (const metric of METRICS) {
    const price = prices[metric];
    if (typeof price !== 'object' || price === null) continue;
    const used = usage[metric] ?? 0;
    const over = Math.max(0, used - price.included);
    const units = Math.ceil(over / Math.max(1, price.unitSize));
    lines.push({ metric, quantity: used, billableUnits: units, amountMicros: units * price.unitPriceMicros });
  }
  return lines;
}

export function totalMicros(lines: readonly ChargeLine[]): number {
  return lines.reduce((sum, line) => sum + line.amountMicros, 0);
}

/** Micro-units as a decimal string with two places, rounded half up: 49000000 → "49.00". */
export function formatAmount(micros: number): string {
  const cents = Math.floor((micros + 5000) / 10000);
  return `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;
}

/** The UTC calendar month containing `at`: its key and bounds. */
export function monthOf(at: Date): { key: string; start: Date; end: Date } {
  const start = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), 1));
  const end = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + 1, 1));
  return { key: start.toISOString().slice(0, 7), start, end };
}

/** Monthly metrics are counted per period; the others are standing totals. */
export function isMonthly(metric: Metric): boolean {
  return metric === 'api_requests' || metric === 'ai_tokens';
}
