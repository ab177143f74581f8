import { assertTenantId, isRole, isTenantId, isUuid } from '../../../functions/core/tenant';
import { InvalidTenantIdError } from '../../../functions/core/errors';

describe('tenant ids', () => {
  it.each(['acme', 'globex', 'a1c', 'acme-evil', 'a'.repeat(40)])('accepts the slug %s', (id) => {
    expect(isTenantId(id)).toBe(true);
  });

  it.each(['', 'ab', 'ACME', 'acme-', '-acme', '1acme', 'acme_x', 'acme%00', 'acme\u0000', '..', 'a/b', 'a'.repeat(41), ' acme'])(
    'refuses %j',
    (id) => {
      expect(isTenantId(id)).toBe(false);
      expect(() => assertTenantId(id)).toThrow(InvalidTenantIdError);
    },
  );

  it('refuses values that are not strings', () => {
    expect(isTenantId(undefined)).toBe(false);
    expect(isTenantId(42)).toBe(false);
  });
});

describe('roles and ids', () => {
  it('knows the four roles and nothing else', () => {
    expect(['org_admin', 'user', 'readonly', 'superadmin'].every(isRole)).toBe(true);
    expect(isRole('admin')).toBe(false);
    expect(isRole('ORG_ADMIN')).toBe(false);
  });

  it('accepts UUIDs and refuses anything else', () => {
    expect(isUuid('0b0d9c5e-2f0a-4c6e-9d7b-3c1d2e3f4a5b')).toBe(true);
    expect(isUuid('0B0D9C5E-2F0A-4C6E-9D7B-3C1D2E3F4A5B')).toBe(false);
    expect(isUuid('not-a-uuid')).toBe(false);
    expect(isUuid('../../etc')).toBe(false);
  });
});
