/**
 * The billing period close against a real Postgres: closed as app_billing (fixtures as the superuser),
 * amounts worked out by hand from the seeded plans (migration 0004), idempotency, refusal of open
 * periods, and what app_runtime may do with invoices (read its own tenant's, write none). The CLI is
 * run as a child process for its output and exit codes.
 *
 * Each test closes its own long-past period and backdates its tenants into it, so tests (and tenants
 * that other test files create now) do not land in each other's periods.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { withTenant, type Sql } from '../../functions/core/db';
import { monthOf } from '../../functions/billing/charges';
import { closePeriod, parsePeriod, PeriodError } from '../../functions/billing/close-period';
import type { Metric } from '../../functions/routes';
import { adminSql, billingSql, contextFor, createTenant, runtimeSql, uniqueTenantId, type TenantFixture } from '../support/db';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '../..');
const TSX = path.join(ROOT, 'node_modules/.bin/tsx');
const CLI = path.join(ROOT, 'bin/billing-close-period.ts');
const GiB = 1024 ** 3;

describe('billing period close', () => {
  let admin: Sql;
  let billing: Sql;
  let runtime: Sql;

  /** A tenant on `planId` that has existed since the start of `period`. */
  const tenantIn = async (period: string, prefix: string, planId: string): Promise<TenantFixture> => {
    const t = await createTenant(admin, uniqueTenantId(prefix), planId);
    await admin`update app.tenants set created_at = ${parsePeriod(period).start} where id = ${t.tenantId}`;
    return t;
  };
  const setUsage = async (tenantId: string, period: string, used: Partial<Record<Metric, number>>) => {
    for (const [metric, n] of Object.entries(used)) {
      await admin`
        insert into app.usage_counters (tenant_id, metric, period, used)
        values (${tenantId}, ${metric}, ${period}, ${n})
        on conflict (tenant_id, metric, period) do update set used = excluded.used`;
    }
  };
  const invoiceRows = (period: string) =>
    admin<{ tenant_id: string; amount_micros: string; currency: string; plan_id: string }[]>`
      select tenant_id, amount_micros, currency, plan_id from app.invoices where period = ${period} order by tenant_id`;
  const cli = async (args: string[], databaseUrl: string | undefined) => {
    const env = { ...process.env, DATABASE_URL: databaseUrl ?? '' };
    try {
      const { stdout, stderr } = await run(TSX, [CLI, ...args], { cwd: ROOT, env, timeout: 30_000 });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const e = error as { code?: number; stdout?: string; stderr?: string };
      return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  };

  beforeAll(() => {
    admin = adminSql();
    billing = billingSql();
    runtime = runtimeSql();
  });
  afterAll(async () => {
    await Promise.all([admin.end(), billing.end(), runtime.end()]);
  });

  it('writes one invoice per tenant: base price plus overage, an unlimited plan, the free plan, and no usage', async () => {
    // Prepare
    const period = '2021-03';
    const pro = await tenantIn(period, 'close-pro', 'pro');
    const enterprise = await tenantIn(period, 'close-ent', 'enterprise');
    const free = await tenantIn(period, 'close-free', 'free');
    const idle = await tenantIn(period, 'close-idle', 'pro');
    await setUsage(pro.tenantId, period, { api_requests: 500_123, ai_tokens: 1_000_500 });
    await setUsage(pro.tenantId, 'total', { storage_bytes: 5 * GiB + 1, documents: 12_000 });
    // Other months never count in this one.
    await setUsage(pro.tenantId, '2021-02', { api_requests: 9_000_000 });
    await setUsage(pro.tenantId, '2021-04', { ai_tokens: 9_000_000 });
    await setUsage(enterprise.tenantId, period, { api_requests: 12_000_000, ai_tokens: 50_000_001 });
    await setUsage(enterprise.tenantId, 'total', { storage_bytes: 101.5 * GiB });
    await setUsage(free.tenantId, period, { api_requests: 10_000, ai_tokens: 100_000 });
    await setUsage(free.tenantId, 'total', { documents: 100, storage_bytes: 100 * 1024 * 1024 });

    // Act
    const result = await closePeriod(billing, period);

    // Assess
    const amount = (t: TenantFixture) => result.invoices.find((i) => i.tenantId === t.tenantId)?.amountMicros;
    // pro: 49.00 base + 123 requests × 100 µ + 500 tokens × 2 µ + 1 started GiB over 5 GiB × 250,000 µ; documents cost 0.
    expect(amount(pro)).toBe(49_000_000 + 12_300 + 1_000 + 250_000);
    // enterprise (no limits, still priced): 499.00 base + 2,000,000 requests × 50 µ + 1 token × 1 µ
    // + 1.5 GiB over 100 GiB, i.e. 2 started GiB × 200,000 µ.
    expect(amount(enterprise)).toBe(499_000_000 + 100_000_000 + 1 + 400_000);
    expect(amount(free)).toBe(0);
    expect(amount(idle)).toBe(49_000_000);
    const proInvoice = result.invoices.find((i) => i.tenantId === pro.tenantId)!;
    expect(proInvoice).toMatchObject({ period, planId: 'pro', currency: 'USD', written: true });
    expect(proInvoice.lines).toEqual([
      { metric: 'base', quantity: 1, billableUnits: 1, amountMicros: 49_000_000 },
      { metric: 'api_requests', quantity: 500_123, billableUnits: 123, amountMicros: 12_300 },
      { metric: 'documents', quantity: 12_000, billableUnits: 2_000, amountMicros: 0 },
      { metric: 'storage_bytes', quantity: 5 * GiB + 1, billableUnits: 1, amountMicros: 250_000 },
      { metric: 'ai_tokens', quantity: 1_000_500, billableUnits: 500, amountMicros: 1_000 },
    ]);

    // Exactly one stored invoice per tenant that existed before the period ended, and no other.
    const rows = await invoiceRows(period);
    const existed = await admin<{ id: string }[]>`
      select id from app.tenants where created_at < ${parsePeriod(period).end} order by id`;
    expect(rows.map((r) => r.tenant_id)).toEqual(existed.map((r) => r.id));
    expect(new Set(rows.map((r) => r.tenant_id)).size).toBe(rows.length);
    const stored = rows.find((r) => r.tenant_id === enterprise.tenantId)!;
    expect(stored).toMatchObject({ amount_micros: '599400001', currency: 'USD', plan_id: 'enterprise' });
    // The totals are the stored invoices summed per currency.
    const usd = result.totals.find((t) => t.currency === 'USD')!;
    expect(usd.amountMicros).toBe(rows.filter((r) => r.currency === 'USD').reduce((s, r) => s + Number(r.amount_micros), 0));
    expect(usd.invoices).toBe(rows.length);
  });

  it('is idempotent: a second close writes nothing, keeps the first amounts and reports the same totals', async () => {
    // Prepare
    const period = '2021-06';
    const t = await tenantIn(period, 'close-idem', 'pro');
    await setUsage(t.tenantId, period, { api_requests: 500_010 });
    const first = await closePeriod(billing, period);
    const before = await invoiceRows(period);
    // Usage that arrives after the close (and a plan change) does not rewrite a closed invoice.
    await setUsage(t.tenantId, period, { api_requests: 900_000 });
    await admin`update app.tenants set plan_id = 'enterprise' where id = ${t.tenantId}`;

    // Act
    const second = await closePeriod(billing, period);

    // Assess
    expect(first.invoices.find((i) => i.tenantId === t.tenantId)).toMatchObject({ amountMicros: 49_001_000, written: true });
    expect(second.invoices.every((i) => !i.written)).toBe(true);
    expect(second.invoices.map(({ written: _, ...rest }) => rest)).toEqual(first.invoices.map(({ written: _, ...rest }) => rest));
    expect(second.totals).toEqual(first.totals);
    expect(await invoiceRows(period)).toEqual(before);
  });

  it('gives a tenant with no usage at all its base-price invoice, and none to a tenant created after the period', async () => {
    const period = '2021-09';
    const idle = await tenantIn(period, 'close-none', 'pro');
    const later = await createTenant(admin, uniqueTenantId('close-later'), 'pro');
    await admin`update app.tenants set created_at = ${parsePeriod(period).end} where id = ${later.tenantId}`;

    const result = await closePeriod(billing, period);

    expect(result.invoices.find((i) => i.tenantId === idle.tenantId)).toMatchObject({
      amountMicros: 49_000_000,
      lines: [
        { metric: 'base', quantity: 1, billableUnits: 1, amountMicros: 49_000_000 },
        { metric: 'api_requests', quantity: 0, billableUnits: 0, amountMicros: 0 },
        { metric: 'documents', quantity: 0, billableUnits: 0, amountMicros: 0 },
        { metric: 'storage_bytes', quantity: 0, billableUnits: 0, amountMicros: 0 },
        { metric: 'ai_tokens', quantity: 0, billableUnits: 0, amountMicros: 0 },
      ],
    });
    expect(result.invoices.some((i) => i.tenantId === later.tenantId)).toBe(false);
  });

  it('refuses the current month, a future month and a malformed period, and writes nothing', async () => {
    const now = new Date();
    const current = monthOf(now).key;
    const future = monthOf(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1))).key;
    await createTenant(admin, uniqueTenantId('close-open'), 'pro');

    await expect(closePeriod(billing, current)).rejects.toThrow(/current month/);
    await expect(closePeriod(billing, future)).rejects.toThrow(/future/);
    for (const bad of ['2021-13', '2021-1', '21-01', 'total', '2021-01-01', '']) {
      await expect(closePeriod(billing, bad)).rejects.toBeInstanceOf(PeriodError);
    }
    const [count] = await admin<{ n: number }[]>`
      select count(*)::int as n from app.invoices where period in (${current}, ${future})`;
    expect(count!.n).toBe(0);
  });

  it('lets app_runtime read only its own tenant\'s invoices and write none', async () => {
    // Prepare
    const period = '2021-11';
    const a = await tenantIn(period, 'close-rls-a', 'pro');
    const b = await tenantIn(period, 'close-rls-b', 'free');
    await closePeriod(billing, period);

    // Act
    const seen = await withTenant(runtime, contextFor(a), (tx) => tx<{ tenant_id: string }[]>`select tenant_id from app.invoices`);
    const outside = await runtime<{ n: number }[]>`select count(*)::int as n from app.invoices`;

    // Assess
    expect(seen.length).toBeGreaterThan(0);
    expect(new Set(seen.map((r) => r.tenant_id))).toEqual(new Set([a.tenantId]));
    expect(outside[0]!.n).toBe(0);
    // No INSERT grant: refused before any policy is consulted, for its own tenant and for another.
    for (const target of [a, b]) {
      await expect(
        withTenant(runtime, contextFor(a), (tx) => tx`
          insert into app.invoices (tenant_id, period, plan_id, currency, amount_micros, lines)
          values (${target.tenantId}, '2021-12', 'free', 'USD', 0, '[]')`),
      ).rejects.toMatchObject({ code: '42501' });
    }
    await expect(withTenant(runtime, contextFor(a), (tx) => tx`update app.invoices set amount_micros = 0`)).rejects.toMatchObject({
      code: '42501',
    });
  });

  describe('the CLI (npm run billing:close-period)', () => {
    it('prints per-tenant invoices and totals, and the same totals again on a re-run', async () => {
      const period = '2022-02';
      const t = await tenantIn(period, 'close-cli', 'pro');
      await setUsage(t.tenantId, period, { api_requests: 500_001 });

      const first = await cli(['--period', period], process.env.TEST_BILLING_DATABASE_URL);
      const second = await cli([`--period=${period}`], process.env.TEST_BILLING_DATABASE_URL);

      expect(first).toMatchObject({ code: 0, stderr: '' });
      expect(second).toMatchObject({ code: 0, stderr: '' });
      expect(first.stdout).toMatch(new RegExp(`^  ${t.tenantId} +pro +USD +49\\.00$`, 'm'));
      expect(first.stdout).toMatch(/^period 2022-02: \d+ invoices \([1-9]\d* written by this run\)$/m);
      expect(second.stdout).toMatch(/^period 2022-02: \d+ invoices \(0 written by this run\)$/m);
      expect(first.stdout).toMatch(/^total USD \d+\.\d\d over \d+ invoices$/m);
      const body = (s: string) => s.split('\n').slice(1).join('\n');
      expect(body(second.stdout)).toBe(body(first.stdout));
    });

    it('runs as a superuser by becoming app_billing, and fails with exit 1 as app_runtime', async () => {
      const period = '2022-04';
      await tenantIn(period, 'close-su', 'free');
      const asAdmin = await cli(['--period', period], process.env.TEST_ADMIN_DATABASE_URL);
      const asRuntime = await cli(['--period', '2022-05'], process.env.TEST_RUNTIME_DATABASE_URL);
      expect(asAdmin.code).toBe(0);
      expect(asAdmin.stdout).toMatch(/^total USD /m);
      expect(asRuntime.code).toBe(1);
      expect(asRuntime.stderr.trim().split('\n')).toHaveLength(1);
      expect(asRuntime.stderr).toMatch(/permission denied to set role "app_billing"/);
    });

    it.each([
      ['a malformed period', ['--period', '2022-13']],
      ['the current month', ['--period', monthOf(new Date()).key]],
      ['a future month', ['--period', '2999-01']],
      ['no period', []],
      ['an unknown argument', ['--period', '2022-01', '--force']],
    ])('exits 2 with one line for %s', async (_name, args) => {
      const result = await cli(args, process.env.TEST_BILLING_DATABASE_URL);
      expect(result.code).toBe(2);
      expect(result.stdout).toBe('');
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
    });

    it('exits 1 with one line when DATABASE_URL is not set', async () => {
      const result = await cli(['--period', '2022-01'], undefined);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/^billing:close-period: DATABASE_URL is not set/);
    });
  });
});
