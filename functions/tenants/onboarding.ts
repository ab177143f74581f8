/**
 * Onboarding a tenant (POST /api/tenants), as the control plane. In order, and retry-safely:
 *  1. the tenant row, with its PII data key (KMS GenerateDataKey, encryption context {tenant_id}),
 *     created `suspended` and not yet `onboarded_at`, with its audit event;
 *  2. the first org_admin as a Cognito user (custom:tenant_id, custom:role);
 *  3. the member row, the tenant `active` and `onboarded_at` set, and the audit events — one transaction.
 * A failure part-way leaves a suspended tenant that nobody can use, and the same request again completes
 * it (the key is reused, the Cognito user is found again). A tenant id that was ever onboarded, or that
 * is offboarded, is never reused: 409. No lock is held across a call to KMS or Cognito.
 */
import type { Sql, Tx } from '../core/db';
import { BadRequestError, ConflictError } from '../core/errors';
import type { UserDirectory } from '../core/cognito';
import type { Pii, TenantKeys } from '../core/pii';
import { isTenantId } from '../core/tenant';
import { assertOperator, recordAudit, withControl, type Actor } from '../lifecycle/control';
import { parseEmail, parseName, toMember, type Member } from '../members/membership';
import { getTenant, parsePlanId, parseTenantName, type Tenant } from './tenant-admin';

export interface OnboardingDependencies {
  /** A client of the control-plane role (app_control). */
  readonly db: Sql;
  readonly pii: Pii;
  readonly directory: UserDirectory;
}

export interface OnboardingInput {
  readonly id: unknown;
  readonly name: unknown;
  readonly planId: unknown;
  readonly admin: { readonly email: unknown; readonly name?: unknown } | undefined;
}

interface PendingTenant {
  name: string;
  plan_id: string;
  status: string;
  onboarded_at: Date | null;
  data_key_ciphertext: Buffer | null;
}

/** POST /api/tenants → 201 `{ tenant, admin }`. 409 for an id in use or ever used; 400 for an unknown plan. */
export async function onboardTenant(
  deps: OnboardingDependencies,
  actor: Actor,
  input: OnboardingInput,
  /**
   * Runs in the transaction that completes the onboarding, with its result and the tenant's keys (the
   * route stores its Idempotency-Key answer there, so the key exists exactly when the tenant does).
   */
  onComplete?: (tx: Tx, result: { tenant: Tenant; admin: Member }, keys: TenantKeys) => Promise<void>,
): Promise<{ tenant: Tenant; admin: Member }> {
  if (!isTenantId(input.id)) throw new BadRequestError('The tenant id is not valid.');
  const tenantId = input.id;
  const name = parseTenantName(input.name);
  const planId = parsePlanId(input.planId);
  if (typeof input.admin !== 'object' || input.admin === null) throw new BadRequestError('The first admin is required.');
  const adminEmail = parseEmail(input.admin.email);
  const adminName = parseName(input.admin.name);

  // 1. Find a pending onboarding of the same request, or check that the id is free.
  const pending = await withControl(deps.db, actor, async (tx) => {
    await assertOperator(tx, actor);
    const plans = await tx`select 1 from app.plans where id = ${planId}`;
    if (plans.length === 0) throw new BadRequestError('The plan is not known.');
    const [row] = await tx<PendingTenant[]>`
      select name, plan_id, status, onboarded_at, data_key_ciphertext from app.tenants where id = ${tenantId}`;
    return row;
  });
  // An admin email that is another tenant's user (or an operator's) is refused before anything is made:
  // a refusal changes nothing. (Taken by another tenant between this check and step 2, it still answers
  // 409 from step 2 and leaves the suspended row that the same request with a free email completes.)
  if (!(await deps.directory.isAvailable(adminEmail, tenantId))) throw new ConflictError('This email cannot be added.');
  let keys: TenantKeys;
  if (pending) {
    keys = await resume(deps, tenantId, pending, { name, planId });
  } else {
    const fresh = await deps.pii.newTenantKey(tenantId);
    keys = fresh.keys;
    const inserted = await withControl(deps.db, actor, async (tx) => {
      const rows = await tx`
        insert into app.tenants (id, name, plan_id, status, data_key_ciphertext, onboarded_at)
        values (${tenantId}, ${name}, ${planId}, 'suspended', ${fresh.wrapped}, null)
        on conflict (id) do nothing
        returning id`;
      if (rows.length > 0) {
        await recordAudit(tx, { tenantId, actor, action: 'tenant.create', resourceType: 'tenant', resourceId: tenantId, detail: { planId } });
      }
      return rows.length > 0;
    });
    if (!inserted) {
      // Someone created it between our check and our insert: the same rules as a retry.
      const [row] = await withControl(deps.db, actor, (tx) => tx<PendingTenant[]>`
        select name, plan_id, status, onboarded_at, data_key_ciphertext from app.tenants where id = ${tenantId}`);
      keys = await resume(deps, tenantId, row!, { name, planId });
    }
  }

  // 2. The first org_admin in Cognito (idempotent for this tenant and email).
  const { userId } = await deps.directory.createUser({ email: adminEmail, name: adminName, tenantId, role: 'org_admin' });

  // 3. The member row and the tenant's activation, together.
  return withControl(deps.db, actor, async (tx) => {
    const hmac = keys.blindIndex('email', adminEmail);
    const [state] = await tx<{ status: string; onboarded_at: Date | null }[]>`
      select status, onboarded_at from app.tenants where id = ${tenantId} for update`;
    if (!state || state.onboarded_at !== null || state.status !== 'suspended') throw new ConflictError('The tenant id is in use or was used.');
    const others = await tx`select 1 from app.members where tenant_id = ${tenantId} and email_hmac <> ${hmac}`;
    if (others.length > 0) throw new ConflictError('The tenant id is in use or was used.');
    await recordAudit(tx, { tenantId, actor, action: 'member.add', resourceType: 'member', resourceId: userId, detail: { role: 'org_admin' } });
    await recordAudit(tx, { tenantId, actor, action: 'tenant.onboard', resourceType: 'tenant', resourceId: tenantId, detail: { planId } });
    const [member] = await tx<Parameters<typeof toMember>[1][]>`
      insert into app.members (tenant_id, user_id, role, status, email_ciphertext, email_hmac, name_ciphertext)
      values (${tenantId}, ${userId}, 'org_admin', 'active', ${keys.encrypt('email', adminEmail)}, ${hmac},
              ${adminName === undefined ? null : keys.encrypt('name', adminName)})
      on conflict (tenant_id, email_hmac) do update set role = 'org_admin', status = 'active', updated_at = now()
      returning user_id, role, status, email_ciphertext, name_ciphertext, created_at`;
    await tx`update app.tenants set status = 'active', onboarded_at = now(), updated_at = now() where id = ${tenantId}`;
    const result = { tenant: await getTenant(tx, tenantId), admin: toMember(keys, member!) };
    await onComplete?.(tx, result, keys);
    return result;
  });
}

/** The keys of a pending onboarding of the same tenant, name and plan; anything else is a used id. */
async function resume(
  deps: OnboardingDependencies,
  tenantId: string,
  row: PendingTenant,
  request: { name: string; planId: string },
): Promise<TenantKeys> {
  const sameRequest = row.onboarded_at === null && row.status === 'suspended' && row.name === request.name && row.plan_id === request.planId;
  if (!sameRequest || !row.data_key_ciphertext) throw new ConflictError('The tenant id is in use or was used.');
  return deps.pii.tenantKeys(tenantId, row.data_key_ciphertext);
}
