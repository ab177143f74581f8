/**
 * A request over its tenant's rate limit is refused without waiting on the tenant's counter row lock,
 * which the tenant's own in-flight requests hold until they commit (reproduction 2 of the security
 * review: such requests queued on the lock, each holding a pooled connection). Another session holds
 * the row here; the refusal is measured against lock_timeout, and pg_stat_activity is sampled for a
 * runtime backend waiting on a lock while the request runs. The positive control is a request within
 * the limit, which does wait for the row (and is served once it is released).
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { withTenant, type Sql } from '../../functions/core/db';
import { QuotaExceededError } from '../../functions/core/errors';
import { meterRequest } from '../../functions/core/metering';
import { adminSql, contextFor, createTenant, holdCounterRow, lockWaiters, runtimeSql, uniqueTenantId, type TenantFixture } from '../support/db';

/** withTenant's default lock_timeout (functions/core/db.ts) for clients not made by createSql. */
const LOCK_TIMEOUT_MS = 2000;

describe('rate limit without lock waits', () => {
  const applicationName = `rate-limit-${randomUUID().slice(0, 8)}`;
  let admin: Sql;
  let holder: Sql;
  let runtime: Sql;
  let t: TenantFixture;

  beforeAll(async () => {
    admin = adminSql();
    holder = adminSql();
    runtime = runtimeSql({ connection: { application_name: applicationName } });
    await admin`
      insert into app.plans (id, name, limits, rate_limit_rps) values ('rate-five', 'Five per second', '{"api_requests": null}', 5)
      on conflict (id) do nothing`;
    t = await createTenant(admin, uniqueTenantId('lockfree'), 'rate-five');
    // The tenant's first request creates its counter row.
    await withTenant(runtime, contextFor(t), (tx) => meterRequest(tx));
  });
  afterAll(async () => {
    await Promise.all([admin.end(), holder.end(), runtime.end()]);
  });

  /**
   * Runs one metered request while another session holds the tenant's counter row with `tokens` left in
   * its committed bucket (refill frozen by a bucket time in the future), and samples pg_stat_activity meanwhile.
   */
  async function requestWhileRowHeld(tokens: number) {
    await admin`
      update app.usage_counters set bucket_tokens = ${tokens}, bucket_at = now() + interval '1 hour'
       where tenant_id = ${t.tenantId} and metric = 'api_requests'`;
    const row = await holdCounterRow(holder, t.tenantId);

    let settled = false;
    let waiters = 0;
    const sampling = (async () => {
      while (!settled) {
        waiters = Math.max(waiters, await lockWaiters(admin, applicationName));
        if (waiters > 0) row.release(); // seen waiting: let it through
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    const started = performance.now();
    const outcome = await withTenant(runtime, contextFor(t), (tx) => meterRequest(tx)).then(
      () => ({ served: true as const, error: undefined }),
      (error: unknown) => ({ served: false as const, error }),
    );
    const elapsedMs = performance.now() - started;
    settled = true;
    await sampling;
    row.release();
    await row.ended;
    return { ...outcome, elapsedMs, lockWaiters: waiters };
  }

  it('refuses a request over the limit at once with 429 while another session holds the counter row', async () => {
    // Act
    const result = await requestWhileRowHeld(0);
    // Assess
    expect(result.served).toBe(false);
    // withTenant maps the TS429 through the one database error map.
    expect(result.error).toBeInstanceOf(QuotaExceededError);
    expect(result.lockWaiters).toBe(0);
    expect(result.elapsedMs).toBeLessThan(LOCK_TIMEOUT_MS / 4);
  });

  it('refuses at once when the holder of the row takes the last token', async () => {
    const result = await requestWhileRowHeld(1.5);
    expect(result.error).toBeInstanceOf(QuotaExceededError);
    expect(result.lockWaiters).toBe(0);
    expect(result.elapsedMs).toBeLessThan(LOCK_TIMEOUT_MS / 4);
  });

  it('lets a request within the limit wait for the row and serves it (positive control of the sampling)', async () => {
    const result = await requestWhileRowHeld(4);
    expect(result.error).toBeUndefined();
    expect(result.served).toBe(true);
    expect(result.lockWaiters).toBeGreaterThan(0);
  });
});
