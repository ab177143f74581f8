/**
 * A transaction asked of a client that has been ended is refused at once (503, nothing run) and opens
 * no connection: every transaction reserves its connection (functions/core/db.ts), and postgres.js
 * 3.4.9 opened a fresh one for a reservation after `end()`, which nothing would ever close (the patch
 * in patches/postgres+3.4.9.patch refuses it, as it refuses a query).
 */
import { randomUUID } from 'node:crypto';
import { withTenant } from '../../functions/core/db';
import { ServiceUnavailableError } from '../../functions/core/errors';
import { adminSql, contextFor, createTenant, runtimeSql, uniqueTenantId } from '../support/db';

describe('a client that was ended', () => {
  it('refuses a transaction with 503 and opens no connection for it', async () => {
    const admin = adminSql();
    const applicationName = `ended-${randomUUID().slice(0, 8)}`;
    const db = runtimeSql({ max: 2, connection: { application_name: applicationName } });
    try {
      const t = await createTenant(admin, uniqueTenantId('ended'), 'pro');
      // Positive control: the client serves, with a connection of its own.
      await withTenant(db, contextFor(t), (tx) => tx`select 1`);
      await db.end({ timeout: 2 });

      let ran = false;
      const outcome = await withTenant(db, contextFor(t), async (tx) => {
        ran = true;
        return tx`select 1`;
      }).catch((error: unknown) => error);

      expect(outcome).toBeInstanceOf(ServiceUnavailableError);
      expect(ran).toBe(false);
      // Give a stray connection the time to log in, then look for it.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const [row] = await admin<{ n: number }[]>`select count(*)::int as n from pg_stat_activity where application_name = ${applicationName}`;
      expect(row!.n).toBe(0);
    } finally {
      await admin.end();
    }
  });
});
