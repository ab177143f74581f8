/**
 * Member management inside one tenant (the member routes, as `app_runtime` in the request's
 * transaction). The database is the authority: the row decides what the member may do at their next
 * request (the request guard reads it), and its rules hold for any SQL the runtime sends — the last
 * active org_admin is kept by a trigger (TS409), an email is unique per tenant by its blind index
 * (23505), and the runtime may update only role, status and name. Cognito follows the row: a user
 * created with the tenant and role, its role attribute, enabled or disabled, deleted on removal.
 *
 * No row lock is held across a Cognito call: a change is checked first without locks, then made in
 * Cognito, then written (the trigger is the last word); when the write is refused, Cognito is put back.
 * Every change writes its audit event in the same transaction.
 */
import type { Tx } from '../core/db';
import { BadRequestError, ConflictError, NotFoundError } from '../core/errors';
import type { UserDirectory } from '../core/cognito';
import { EMAIL_MAX_LENGTH, EMAIL_PATTERN } from '../core/email';
import type { Pii, TenantKeys } from '../core/pii';
import { isUuid, type Role, type TenantRole } from '../core/tenant';
import { lifecycleError, recordAudit } from '../lifecycle/control';

/** The tenant request a member change runs in (the wrapper's RouteContext has these fields). */
export interface MemberContext {
  readonly tx: Tx;
  readonly tenantId: string;
  readonly userId: string;
  readonly role: Role;
  readonly requestId: string;
  /**
   * Given by a route (the wrapper's `ctx.audit`): the wrapper writes the request's one audit event, and
   * the change reports its resource id and detail to it. Without it the change writes its own named
   * event (`member.add`, …) in the same transaction.
   */
  readonly audit?: (resource: { id?: string; detail?: Record<string, unknown> }) => void;
}

/** The change's audit event: reported to the route's wrapper, or written here (one event either way). */
export async function auditChange(
  ctx: MemberContext,
  event: { action: string; resourceType: string; resourceId: string; detail?: Record<string, unknown> },
): Promise<void> {
  if (ctx.audit) {
    ctx.audit({ id: event.resourceId, detail: { ...event.detail, change: event.action } });
    return;
  }
  await recordAudit(ctx.tx, { tenantId: ctx.tenantId, actor: ctx, ...event });
}

export interface MemberDependencies {
  readonly pii: Pii;
  readonly directory: UserDirectory;
}

export type MemberStatus = 'active' | 'inactive';

/** A member as API.md shows it. */
export interface Member {
  readonly userId: string;
  readonly email: string;
  readonly name?: string;
  readonly role: TenantRole;
  readonly status: MemberStatus;
  readonly createdAt: string;
}

export const TENANT_ROLES: readonly TenantRole[] = ['org_admin', 'user', 'readonly'];
const EMAIL = new RegExp(EMAIL_PATTERN, 'u');

/** A normalised email, or 400. */
export function parseEmail(value: unknown): string {
  if (typeof value !== 'string' || value.length > EMAIL_MAX_LENGTH || !EMAIL.test(value.trim())) {
    throw new BadRequestError('The email is not valid.');
  }
  return value.trim().toLowerCase();
}

export function parseRole(value: unknown): TenantRole {
  if (!(TENANT_ROLES as readonly unknown[]).includes(value)) throw new BadRequestError('The role must be org_admin, user or readonly.');
  return value as TenantRole;
}

export function parseName(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value.trim().length === 0 || value.length > 200 || /[\u0000-\u001f\u007f]/.test(value)) {
    throw new BadRequestError('The name must be 1 to 200 printable characters.');
  }
  return value.trim();
}

interface MemberRow {
  user_id: string;
  role: TenantRole;
  status: MemberStatus;
  email_ciphertext: Buffer;
  name_ciphertext: Buffer | null;
  created_at: Date;
}

export function toMember(keys: TenantKeys, row: MemberRow): Member {
  return {
    userId: row.user_id,
    email: keys.decrypt('email', row.email_ciphertext),
    ...(row.name_ciphertext ? { name: keys.decrypt('name', row.name_ciphertext) } : {}),
    role: row.role,
    status: row.status,
    createdAt: row.created_at.toISOString(),
  };
}

/** The tenant's PII keys (unwrapped by KMS, cached per container). */
export async function tenantKeysIn(tx: Tx, pii: Pii, tenantId: string): Promise<TenantKeys> {
  const [tenant] = await tx<{ data_key_ciphertext: Buffer | null }[]>`
    select data_key_ciphertext from app.tenants where id = ${tenantId}`;
  if (!tenant?.data_key_ciphertext) throw new NotFoundError('Not found.');
  return pii.tenantKeys(tenantId, tenant.data_key_ciphertext);
}

async function memberRow(tx: Tx, tenantId: string, userId: string): Promise<MemberRow> {
  // Not a UUID, or another tenant's member: the same 404, and nothing reveals which.
  if (!isUuid(userId)) throw new NotFoundError('Not found.');
  const [row] = await tx<MemberRow[]>`
    select user_id, role, status, email_ciphertext, name_ciphertext, created_at
      from app.members where tenant_id = ${tenantId} and user_id = ${userId}`;
  if (!row) throw new NotFoundError('Not found.');
  return row;
}

/** True when another active org_admin than `userId` exists (a lock-free early check; the trigger decides). */
async function anotherActiveAdmin(tx: Tx, tenantId: string, userId: string): Promise<boolean> {
  const rows = await tx`
    select 1 from app.members
     where tenant_id = ${tenantId} and user_id <> ${userId} and role = 'org_admin' and status = 'active' limit 1`;
  return rows.length > 0;
}

const LAST_ADMIN = 'The last active org_admin of a tenant cannot be demoted, deactivated or removed.';

/** Runs a write whose refusal by the database must undo what was done in Cognito. */
async function writeOrUndo<T>(write: () => Promise<T>, undo: () => Promise<void>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    await undo().catch(() => undefined);
    throw lifecycleError(error);
  }
}

/** GET /api/{tenantId}/members/{userId}. */
export async function getMember(ctx: MemberContext, deps: Pick<MemberDependencies, 'pii'>, userId: string): Promise<Member> {
  const row = await memberRow(ctx.tx, ctx.tenantId, userId);
  return toMember(await tenantKeysIn(ctx.tx, deps.pii, ctx.tenantId), row);
}

/**
 * POST /api/{tenantId}/members: a Cognito user with the tenant and role (able to sign in: deployed by
 * invitation, locally at once), and the member row (email as ciphertext plus blind index). An email
 * already a member of this tenant → 409 before anything is created; a retry after a failure part-way
 * finds the Cognito user it created and completes.
 */
export async function addMember(
  ctx: MemberContext,
  deps: MemberDependencies,
  input: { email: unknown; role: unknown; name?: unknown },
): Promise<Member> {
  const email = parseEmail(input.email);
  const role = parseRole(input.role);
  const name = parseName(input.name);
  const keys = await tenantKeysIn(ctx.tx, deps.pii, ctx.tenantId);
  const hmac = keys.blindIndex('email', email);
  const taken = await ctx.tx`select 1 from app.members where tenant_id = ${ctx.tenantId} and email_hmac = ${hmac}`;
  if (taken.length > 0) throw new ConflictError('This email is already a member.');

  const { userId } = await deps.directory.createUser({ email, name, tenantId: ctx.tenantId, role });
  try {
    await auditChange(ctx, {
      action: 'member.add',
      resourceType: 'member',
      resourceId: userId,
      detail: { role },
    });
    const [row] = await ctx.tx<MemberRow[]>`
      insert into app.members (tenant_id, user_id, role, status, email_ciphertext, email_hmac, name_ciphertext)
      values (${ctx.tenantId}, ${userId}, ${role}, 'active', ${keys.encrypt('email', email)}, ${hmac},
              ${name === undefined ? null : keys.encrypt('name', name)})
      returning user_id, role, status, email_ciphertext, name_ciphertext, created_at`;
    return toMember(keys, row!);
  } catch (error) {
    throw lifecycleError(error);
  }
}

/**
 * PATCH /api/{tenantId}/members/{userId}: role and/or status. Takes effect at the member's next request
 * (the request guard reads the row; Cognito's role attribute follows for the next token). The last
 * active org_admin → 409, also when two admins demote each other at once (the trigger serialises them).
 */
export async function updateMember(
  ctx: MemberContext,
  deps: MemberDependencies,
  userId: string,
  input: { role?: unknown; status?: unknown },
): Promise<Member> {
  const role = input.role === undefined ? undefined : parseRole(input.role);
  if (input.status !== undefined && input.status !== 'active' && input.status !== 'inactive') {
    throw new BadRequestError('The status must be active or inactive.');
  }
  const status = input.status as MemberStatus | undefined;
  const before = await memberRow(ctx.tx, ctx.tenantId, userId);
  const next = { role: role ?? before.role, status: status ?? before.status };
  const keys = await tenantKeysIn(ctx.tx, deps.pii, ctx.tenantId);
  if (next.role === before.role && next.status === before.status) return toMember(keys, before);

  const losesAdmin = before.role === 'org_admin' && before.status === 'active' && (next.role !== 'org_admin' || next.status !== 'active');
  if (losesAdmin && !(await anotherActiveAdmin(ctx.tx, ctx.tenantId, userId))) throw new ConflictError(LAST_ADMIN);

  if (next.role !== before.role) await deps.directory.setRole(userId, next.role);
  if (next.status !== before.status) await (next.status === 'active' ? deps.directory.enable(userId) : deps.directory.disable(userId));

  return writeOrUndo(
    async () => {
      await auditChange(ctx, {
        action: 'member.update',
        resourceType: 'member',
        resourceId: userId,
        detail: { from: { role: before.role, status: before.status }, to: next },
      });
      const [row] = await ctx.tx<MemberRow[]>`
        update app.members set role = ${next.role}, status = ${next.status}, updated_at = now()
         where tenant_id = ${ctx.tenantId} and user_id = ${userId}
        returning user_id, role, status, email_ciphertext, name_ciphertext, created_at`;
      if (!row) throw new NotFoundError('Not found.');
      return toMember(keys, row);
    },
    async () => {
      if (next.role !== before.role) await deps.directory.setRole(userId, before.role);
      if (next.status !== before.status) await (before.status === 'active' ? deps.directory.enable(userId) : deps.directory.disable(userId));
    },
  );
}

/**
 * DELETE /api/{tenantId}/members/{userId}: the person can no longer sign in (the Cognito user is
 * disabled, then deleted once the row is gone) and a token they still hold is refused at the next
 * request (no row). The last active org_admin → 409.
 */
export async function removeMember(ctx: MemberContext, deps: MemberDependencies, userId: string): Promise<void> {
  const before = await memberRow(ctx.tx, ctx.tenantId, userId);
  if (before.role === 'org_admin' && before.status === 'active' && !(await anotherActiveAdmin(ctx.tx, ctx.tenantId, userId))) {
    throw new ConflictError(LAST_ADMIN);
  }
  // Disabling is reversible: if the database refuses the removal, the user is enabled again.
  await deps.directory.disable(userId);
  await writeOrUndo(
    async () => {
      await auditChange(ctx, {
        action: 'member.remove',
        resourceType: 'member',
        resourceId: userId,
        detail: { role: before.role },
      });
      await ctx.tx`delete from app.members where tenant_id = ${ctx.tenantId} and user_id = ${userId}`;
    },
    async () => {
      if (before.status === 'active') await deps.directory.enable(userId);
    },
  );
  await deps.directory.deleteUser(userId);
}
