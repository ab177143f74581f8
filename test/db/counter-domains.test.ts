/**
 * app.usage_counters.metric and .period are domains (migration 0014): their CHECKs run where a value is
 * assigned, not on every UPDATE of the row as a table CHECK would. What the table accepts is unchanged:
 * a metric outside the list or a malformed period is refused with 23514 (check_violation) on INSERT, on
 * INSERT ... ON CONFLICT, and on an UPDATE that sets the column; an UPDATE that leaves both columns
 * alone (what metering does) counts as before.
 */
import { randomUUID } from 'node:crypto';
import { withTenant, type Sql } from '../../functions/core/db';
import { meterRequest } from '../../functions/core/metering';
import { adminSql, contextFor, createTenant, runtimeSql, uniqueTenantId, type TenantFixture } from '../support/db';

const BAD_METRICS = ['bogus', 'API_REQUESTS', '', ' api_requests'];
const BAD_PERIODS = ['2024-13', '2024-00', '24-01', '2024-1', 'Total', '2024-01 ', ''];

describe('usage counter metric and period domains', () => {
  let admin: Sql;
  let runtime: Sql;
  let t: TenantFixture;
  const refusal = (p: Promise<unknown>) => p.then(() => undefined, (e: { code?: string }) => e);

  beforeAll(async () => {
    admin = adminSql();
    runtime = runtimeSql();
    t = await createTenant(admin, uniqueTenantId('domains'));
    await withTenant(runtime, contextFor(t), (tx) => meterRequest(tx));
  });
  afterAll(async () => {
    await Promise.all([admin.end(), runtime.end()]);
  });

  it('keeps the table CHECKs off metric and period, with the rules on their domains', async () => {
    const checks = await admin<{ conname: string }[]>`
      select conname from pg_constraint where conrelid = 'app.usage_counters'::regclass and contype = 'c' order by conname`;
    expect(checks.map((c) => c.conname)).toEqual(['usage_counters_used_check']);
    const columns = await admin<{ attname: string; type: string }[]>`
      select attname, format_type(atttypid, atttypmod) as type from pg_attribute
       where attrelid = 'app.usage_counters'::regclass and attname in ('metric', 'period') order by attname`;
    expect(columns).toEqual([{ attname: 'metric', type: 'app.usage_metric' }, { attname: 'period', type: 'app.usage_period' }]);
  });

  it.each(BAD_METRICS)('refuses metric %j on INSERT with 23514', async (metric) => {
    await expect(admin`insert into app.usage_counters (tenant_id, metric, period) values (${t.tenantId}, ${metric}, 'total')`)
      .rejects.toMatchObject({ code: '23514' });
  });

  it.each(BAD_PERIODS)('refuses period %j on INSERT with 23514', async (period) => {
    await expect(admin`insert into app.usage_counters (tenant_id, metric, period) values (${t.tenantId}, 'documents', ${period})`)
      .rejects.toMatchObject({ code: '23514' });
    await expect(admin`
      insert into app.usage_counters (tenant_id, metric, period) values (${t.tenantId}, 'documents', ${period})
      on conflict (tenant_id, metric, period) do update set used = app.usage_counters.used + 1`)
      .rejects.toMatchObject({ code: '23514' });
  });

  it('refuses an UPDATE that sets a bad metric or period with 23514, and changes nothing', async () => {
    const before = await admin`select metric, period, used from app.usage_counters where tenant_id = ${t.tenantId}`;
    for (const metric of BAD_METRICS) {
      await expect(admin`update app.usage_counters set metric = ${metric} where tenant_id = ${t.tenantId}`).rejects.toMatchObject({ code: '23514' });
    }
    for (const period of BAD_PERIODS) {
      await expect(admin`update app.usage_counters set period = ${period} where tenant_id = ${t.tenantId}`).rejects.toMatchObject({ code: '23514' });
      await expect(admin`update app.usage_counters set period = period || 'x' where tenant_id = ${t.tenantId}`).rejects.toMatchObject({ code: '23514' });
    }
    const error = await refusal(admin`update app.usage_counters set metric = 'bogus' where tenant_id = ${t.tenantId}`);
    expect(error).toMatchObject({ code: '23514', constraint_name: 'usage_metric_check' });
    expect(await admin`select metric, period, used from app.usage_counters where tenant_id = ${t.tenantId}`).toEqual(before);
  });

  it('accepts every metric, a month and total, and counts through metering as before', async () => {
    const tenant = await createTenant(admin, uniqueTenantId('domains-ok'));
    for (const metric of ['documents', 'storage_bytes', 'ai_tokens']) {
      await admin`insert into app.usage_counters (tenant_id, metric, period, used) values (${tenant.tenantId}, ${metric}, 'total', 1)`;
    }
    await admin`insert into app.usage_counters (tenant_id, metric, period, used) values (${tenant.tenantId}, 'ai_tokens', '1999-12', 1)`;
    await admin`update app.usage_counters set period = '2000-01' where tenant_id = ${tenant.tenantId} and period = '1999-12'`;
    for (let i = 1; i <= 3; i++) {
      await expect(withTenant(runtime, { ...contextFor(tenant), requestId: randomUUID() }, (tx) => meterRequest(tx))).resolves.toMatchObject({ used: i });
    }
    const rows = await admin<{ metric: string; period: string }[]>`
      select metric, period from app.usage_counters where tenant_id = ${tenant.tenantId} order by metric, period`;
    expect(rows.map((r) => `${r.metric}/${r.period}`)).toEqual([
      'ai_tokens/2000-01', 'ai_tokens/total', `api_requests/${new Date().toISOString().slice(0, 7)}`, 'documents/total', 'storage_bytes/total',
    ]);
  });

  it('leaves usage events with their table CHECKs (inserted, never updated)', async () => {
    const checks = await admin<{ conname: string }[]>`
      select conname from pg_constraint where conrelid = 'app.usage_events'::regclass and contype = 'c' order by conname`;
    expect(checks.map((c) => c.conname)).toEqual(expect.arrayContaining(['usage_events_metric_check', 'usage_events_period_check']));
  });
});
