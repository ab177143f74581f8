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
import { adminSql, contextFor, createTenant, runtimeSql, uniqueTenantId, type TenantFixture } from '../support/db';

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
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let held!: () => void;
    const rowHeld = new Promise<void>((resolve) => (held = resolve));
    await admin`
      update app.usage_counters set bucket_tokens = ${tokens}, bucket_at = now() + interval '1 hour'
       where tenant_id = ${t.tenantId} and metric = 'api_requests'`;
    const holding = holder.begin(async (tx) => {
      // What an in-flight request of the tenant does: holds the row until it commits.
      await tx`select 1 from app.usage_counters where tenant_id = ${t.tenantId} and metric = 'api_requests' for update`;
      held();
      await released;
    });
    await rowHeld;

    let settled = false;
    let lockWaiters = 0;
    const sampling = (async () => {
      while (!settled) {
        const [row] = await admin<{ n: number }[]>`
          select count(*)::int as n from pg_stat_activity
           where application_name = ${applicationName} and wait_event_type = 'Lock'`;
        lockWaiters = Math.max(lockWaiters, row!.n);
        if (lockWaiters > 0) release(); // seen waiting: let it through
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
    release();
    await holding;
    return { ...outcome, elapsedMs, lockWaiters };
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
