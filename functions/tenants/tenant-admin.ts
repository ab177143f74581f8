/**
 * Platform operators' view and changes of one tenant (GET and PATCH /api/tenants/{tenantId}), as the
 * control plane. A plan change applies to quotas and the billing view at once (both read the tenant's
 * plan in the request's transaction); a suspended tenant's members are refused (403) at their next
 * request by the request guard. Offboarding and deleted tenants cannot be changed (TS409 → 409).
 */
import type { Sql, Tx } from '../core/db';
import { BadRequestError, NotFoundError } from '../core/errors';
import { isTenantId } from '../core/tenant';
import { assertOperator, recordAudit, withControl, type Actor } from '../lifecycle/control';

/** A tenant's display name, or 400. */
export function parseTenantName(value: unknown): string {
  if (typeof value !== 'string' || value.trim().length === 0 || value.length > 200 || /[\u0000-\u001f\u007f]/.test(value)) {
    throw new BadRequestError('The name must be 1 to 200 printable characters.');
  }
  return value.trim();
}

/** A plan id's shape, or 400 (whether the plan exists is checked in SQL). */
export function parsePlanId(value: unknown): string {
  if (typeof value !== 'string' || !/^[a-z][a-z0-9_-]{0,39}$/.test(value)) throw new BadRequestError('The plan is not known.');
  return value;
}

export type TenantStatus = 'active' | 'suspended' | 'offboarding' | 'deleted';

/** A tenant as API.md shows it; an offboarded tenant carries its deletion report (no PII). */
export interface Tenant {
  readonly id: string;
  readonly name: string;
  readonly planId: string;
  readonly status: TenantStatus;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly deletionReport?: Record<string, unknown>;
}

interface TenantRow {
  id: string;
  name: string;
  plan_id: string;
  status: TenantStatus;
  created_at: Date;
  updated_at: Date;
  deletion_report: Record<string, unknown> | null;
}

/** The tenant, read in the caller's (control-plane) transaction; 404 when there is none. */
export async function getTenant(tx: Tx, tenantId: string): Promise<Tenant> {
  if (!isTenantId(tenantId)) throw new NotFoundError('Not found.');
  const [row] = await tx<TenantRow[]>`
    select id, name, plan_id, status, created_at, updated_at, deletion_report from app.tenants where id = ${tenantId}`;
  if (!row) throw new NotFoundError('Not found.');
  return {
    id: row.id,
    name: row.name,
    planId: row.plan_id,
    status: row.status,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
    ...(row.deletion_report ? { deletionReport: row.deletion_report } : {}),
  };
}

/** GET /api/tenants/{tenantId} → 200 tenant. */
export function readTenant(db: Sql, actor: Actor, tenantId: string): Promise<Tenant> {
  return withControl(db, actor, async (tx) => {
    await assertOperator(tx, actor);
    return getTenant(tx, tenantId);
  });
}

/**
 * PATCH /api/tenants/{tenantId} → 200 tenant. `status` only `active` or `suspended` (offboarding is
 * DELETE); an unknown plan → 400; a tenant offboarding or deleted → 409. Audited in the tenant.
 */
export function updateTenant(
  db: Sql,
  actor: Actor,
  tenantId: string,
  input: { name?: unknown; planId?: unknown; status?: unknown },
): Promise<Tenant> {
  const name = input.name === undefined ? undefined : parseTenantName(input.name);
  const planId = input.planId === undefined ? undefined : parsePlanId(input.planId);
  if (input.status !== undefined && input.status !== 'active' && input.status !== 'suspended') {
    throw new BadRequestError('The status must be active or suspended.');
  }
  const status = input.status as 'active' | 'suspended' | undefined;
  return withControl(db, actor, async (tx) => {
    await assertOperator(tx, actor);
    const before = await getTenant(tx, tenantId);
    if (planId !== undefined && (await tx`select 1 from app.plans where id = ${planId}`).length === 0) {
      throw new BadRequestError('The plan is not known.');
    }
    const changes = {
      ...(name !== undefined && name !== before.name ? { name } : {}),
      ...(planId !== undefined && planId !== before.planId ? { planId } : {}),
      ...(status !== undefined && status !== before.status ? { status } : {}),
    };
    if (Object.keys(changes).length === 0 && before.status !== 'deleted' && before.status !== 'offboarding') return before;
    // The status trigger refuses any change to an offboarding or deleted tenant (TS409).
    await tx`
      update app.tenants
         set name = ${name ?? before.name}, plan_id = ${planId ?? before.planId}, status = ${status ?? before.status},
             updated_at = now()
       where id = ${tenantId}`;
    await recordAudit(tx, {
      tenantId,
      actor,
      action: 'tenant.update',
      resourceType: 'tenant',
      resourceId: tenantId,
      detail: { from: { planId: before.planId, status: before.status }, to: { planId: planId ?? before.planId, status: status ?? before.status } },
    });
    return getTenant(tx, tenantId);
  });
}
