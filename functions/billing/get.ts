import { route, type RouteContext } from '../core/handler';
import { routes } from '../routes';
import { NotFoundError } from '../core/errors';
import { ok, type Reply } from '../core/http';
import { METRICS, type Metric } from '../core/metrics';
import { chargeLines, formatAmount, isMonthly, monthOf, totalMicros, type PlanPrices } from './charges';

interface PlanRow {
  plan_id: string;
  plan_name: string;
  limits: Record<string, number | null>;
  prices: PlanPrices;
  currency: string;
}

/** Plan, current period (UTC calendar month), usage against limits, and the estimated charges so far. */
export async function work({ tx, tenantId }: RouteContext): Promise<Reply> {
  const period = monthOf(new Date());
  const [[plan], counters] = await Promise.all([
    tx<PlanRow[]>`
      select p.id as plan_id, p.name as plan_name, p.limits, p.prices, p.currency
        from app.tenants t join app.plans p on p.id = t.plan_id where t.id = ${tenantId}`,
    tx<{ metric: Metric; used: string }[]>`
      select metric, used from app.usage_counters
       where tenant_id = ${tenantId} and period in (${period.key}, 'total')`,
  ]);
  if (!plan) throw new NotFoundError('Not found.');
  const usage = Object.fromEntries(METRICS.map((m) => [m, 0])) as Record<Metric, number>;
  for (const c of counters) usage[c.metric] = Number(c.used);
  const limits = Object.fromEntries(METRICS.map((m) => [m, plan.limits[m] ?? null]));
  const lines = chargeLines(plan.prices, usage);
  return ok({
    tenantId,
    plan: { id: plan.plan_id, name: plan.plan_name, limits },
    period: { start: period.start.toISOString(), end: period.end.toISOString() },
    usage,
    monthlyMetrics: METRICS.filter(isMonthly),
    estimatedCharges: { currency: plan.currency, amount: formatAmount(totalMicros(lines)) },
  });
}

export const handler = route(routes.getBilling, work);
