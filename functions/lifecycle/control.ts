/**
 * The control plane's database access. Platform operations (onboarding, tenant changes, offboarding)
 * and the job runner connect as the control-plane login role `app_control`, never as `app_runtime`:
 * `db` here is a client of that role. Like `withTenant`, one transaction whose first statement sets the
 * actor and the request id transaction-locally; the control role's own policies then let it work across
 * tenants, always naming the tenant in its SQL.
 */
import type { Sql, Tx } from '../core/db';
import { fromDatabaseError } from '../core/db-errors';
import { ForbiddenError, UnauthorizedError } from '../core/errors';
import { isUuid, type Role } from '../core/tenant';

/** Who acts: a platform operator for platform routes; for jobs, the member or operator who asked. */
export interface Actor {
  readonly userId: string;
  readonly role: Role;
  readonly requestId: string;
}

/**
 * The HTTP meaning of a database error in lifecycle work: the one map of core/db-errors.ts (TS409 and
 * 23505 → 409, 23503 → 400, TS403 → 403, an unreachable database → 503); anything else passes through.
 */
export const lifecycleError: (error: unknown) => unknown = fromDatabaseError;

/** Runs `fn` in one control-plane transaction acting as `actor`. Maps lifecycle SQLSTATEs to typed errors. */
export async function withControl<T>(db: Sql, actor: Actor, fn: (tx: Tx) => Promise<T>): Promise<T> {
  if (!isUuid(actor.userId)) throw new UnauthorizedError('The caller is not valid.');
  try {
    return (await db.begin(async (tx) => {
      const context = tx`
        select set_config('app.user_id', ${actor.userId}, true),
               set_config('app.role', ${actor.role}, true),
               set_config('app.request_id', ${actor.requestId}, true),
               set_config('lock_timeout', '5000ms', true)`.execute();
      const [, result] = await Promise.all([context, fn(tx as Tx)]);
      return result;
    })) as T;
  } catch (error) {
    throw lifecycleError(error);
  }
}

/** Refuses an actor that is not an active platform operator (in the caller's transaction). */
export async function assertOperator(tx: Tx, actor: Actor): Promise<void> {
  const rows = await tx`select 1 from app.platform_operators where user_id = ${actor.userId} and status = 'active'`;
  if (actor.role !== 'superadmin' || rows.length === 0) throw new ForbiddenError('Only an active platform operator may do this.');
}

/** One audit event in `tenantId`, in the caller's transaction. `detail` never carries PII. */
export async function recordAudit(
  tx: Tx,
  event: {
    readonly tenantId: string;
    readonly actor: Actor;
    readonly action: string;
    readonly resourceType: string;
    readonly resourceId?: string;
    readonly detail?: Record<string, unknown>;
  },
): Promise<void> {
  await tx`
    insert into app.audit_events (tenant_id, actor_user_id, actor_role, action, resource_type, resource_id, request_id, detail)
    values (${event.tenantId}, ${event.actor.userId}, ${event.actor.role}, ${event.action}, ${event.resourceType},
            ${event.resourceId ?? null}, ${event.actor.requestId}, ${tx.json((event.detail ?? {}) as never)})`;
}
