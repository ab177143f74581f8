import { InvalidTenantIdError } from './errors';

/** Tenant ids are slugs; the same rule is a CHECK constraint in the schema. */
export const TENANT_ID_PATTERN = /^[a-z][a-z0-9-]{1,38}[a-z0-9]$/;

export const ROLES = ['org_admin', 'user', 'readonly', 'superadmin'] as const;
export type Role = (typeof ROLES)[number];
/** Roles a member of a tenant can hold; `superadmin` belongs to the platform, not to a tenant. */
export type TenantRole = Exclude<Role, 'superadmin'>;

export function isTenantId(value: unknown): value is string {
  return typeof value === 'string' && TENANT_ID_PATTERN.test(value);
}

/** Returns the tenant id unchanged, or throws before anything else happens. */
export function assertTenantId(value: unknown): string {
  if (!isTenantId(value)) throw new InvalidTenantIdError();
  return value;
}

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}


export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID_PATTERN.test(value);
}
