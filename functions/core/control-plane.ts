/**
 * The control plane's database access. Platform operations (onboarding, tenant changes, offboarding)
 * and the job runner connect as the control-plane login role `app_control`, never as `app_runtime`:
 * `db` here is a client of that role. Like `withTenant`, one transaction whose first statement sets the
 * actor and the request id transaction-locally; the control role's own policies then let it work across
 * tenants, always naming the tenant in its SQL. In core so that the wrapper itself checks the operator
 * of every platform route before its work runs.
 */
import { inTransaction, type Sql, type Tx } from './db';
import { fromDatabaseError } from './db-errors';
import { ForbiddenError, UnauthorizedError } from './errors';
import { isUuid, type Role } from './tenant';

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
export function withControl<T>(db: Sql, actor: Actor, fn: (tx: Tx) => Promise<T>): Promise<T> {
  if (!isUuid(actor.userId)) return Promise.reject(new UnauthorizedError('The caller is not valid.'));
  const settings = { 'app.user_id': actor.userId, 'app.role': actor.role, 'app.request_id': actor.requestId, lock_timeout: '5000ms' };
  return inTransaction(db, settings, fn);
}

/** Refuses an actor that is not an active platform operator (in the caller's transaction). */
export async function assertOperator(tx: Tx, actor: Actor): Promise<void> {
  const rows = await tx`select 1 from app.platform_operators where user_id = ${actor.userId} and status = 'active'`;
  if (actor.role !== 'superadmin' || rows.length === 0) throw new ForbiddenError('Only an active platform operator may do this.');
}

