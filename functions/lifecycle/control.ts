/**
 * Lifecycle work on the control plane: the transactions and operator check of core/control-plane.ts,
 * and the audit events of platform operations.
 */
import type { Tx } from '../core/db';

export { assertOperator, lifecycleError, withControl, type Actor } from '../core/control-plane';
import type { Actor } from '../core/control-plane';

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
