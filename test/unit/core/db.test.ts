import { randomUUID } from 'node:crypto';
import net from 'node:net';
import postgres from 'postgres';
import { isConnectionError, withTenant } from '../../../functions/core/db';
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

describe('isConnectionError', () => {
  it('recognises connection failures and overload, and not query errors', () => {
    expect(isConnectionError({ code: 'ECONNREFUSED' })).toBe(true);
    expect(isConnectionError({ code: 'CONNECT_TIMEOUT' })).toBe(true);
    expect(isConnectionError({ code: '53300' })).toBe(true);
    expect(isConnectionError({ code: '08006' })).toBe(true);
    expect(isConnectionError({ code: '42501' })).toBe(false);
    expect(isConnectionError({ code: '23505' })).toBe(false);
    expect(isConnectionError(new Error('x'))).toBe(false);
    expect(isConnectionError(null)).toBe(false);
  });

  it("treats the runtime role's statement and idle-in-transaction timeouts as overload (503), not as a bug (500)", () => {
    expect(isConnectionError({ code: '57014' })).toBe(true);
    expect(isConnectionError({ code: '25P03' })).toBe(true);
  });
});
