import { randomUUID } from 'node:crypto';
import net from 'node:net';
import postgres from 'postgres';
import { withTenant } from '../../../functions/core/db';
import { InvalidTenantIdError, ServiceUnavailableError } from '../../../functions/core/errors';

describe('withTenant without a reachable database', () => {
  it('refuses a tenant id that breaks the slug rule before any SQL', async () => {
    const sent: string[] = [];
    const db = postgres('postgres://nobody@127.0.0.1:1/none', { max: 1, debug: (_c, query) => sent.push(query) });
    const ctx = { tenantId: 'ACME', userId: randomUUID(), role: 'user' as const, requestId: 'r1' };
    await expect(withTenant(db, ctx, (tx) => tx`select 1`)).rejects.toBeInstanceOf(InvalidTenantIdError);
    expect(sent).toEqual([]);
    await db.end();
  });

  it('turns a refused connection into a typed service-unavailable error', async () => {
    // A port that nothing listens on: bind one, remember it, close it.
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const db = postgres(`postgres://nobody@127.0.0.1:${port}/none`, { max: 1, connect_timeout: 2 });
    const ctx = { tenantId: 'acme', userId: randomUUID(), role: 'user' as const, requestId: 'r2' };
    await expect(withTenant(db, ctx, (tx) => tx`select 1`)).rejects.toBeInstanceOf(ServiceUnavailableError);
    await db.end();
  });
});
