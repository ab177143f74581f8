import { randomUUID } from 'node:crypto';
import { claimsToCaller } from '../../../functions/core/auth';
import { UnauthorizedError } from '../../../functions/core/errors';

describe('claimsToCaller', () => {
  const sub = randomUUID();

  it('returns a tenant member with tenant and role', () => {
    expect(claimsToCaller({ sub, 'custom:tenant_id': 'acme', 'custom:role': 'user' })).toEqual({ userId: sub, role: 'user', tenantId: 'acme' });
  });

  it('returns a platform operator without a tenant', () => {
    expect(claimsToCaller({ sub, 'custom:role': 'superadmin' })).toEqual({ userId: sub, role: 'superadmin' });
  });

  it.each([
    ['a subject that is not a UUID', { sub: 'alice', 'custom:tenant_id': 'acme', 'custom:role': 'user' }],
    ['an unknown role', { sub, 'custom:tenant_id': 'acme', 'custom:role': 'admin' }],
    ['no role', { sub, 'custom:tenant_id': 'acme' }],
    ['a tenant that breaks the slug rule', { sub, 'custom:tenant_id': 'ACME', 'custom:role': 'user' }],
    ['a member without a tenant', { sub, 'custom:role': 'org_admin' }],
  ])('refuses %s with 401', (_name, claims) => {
    expect(() => claimsToCaller(claims)).toThrow(UnauthorizedError);
  });
});
