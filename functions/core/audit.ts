/** Which resource a request's audit event names: decided by the manifest, never guessed from the URL. */
import type { RouteSpec } from './route-spec';

/**
 * The resource an audit event names, from the manifest only. A mutating route without `audit`, or whose
 * `audit.id` is `'work'` but whose work reported none, is a programming error: throwing here rolls the
 * transaction back (500, logged) rather than committing an event that names the wrong thing. A
 * platform operator's read of a tenant route without `audit` names the tenant itself.
 */
export function auditResource(
  routeId: string,
  spec: RouteSpec,
  params: Readonly<Record<string, string>>,
  tenantId: string,
  reported: { id?: string },
): { type: string; id: string | null } {
  const declared = spec.audit;
  if (!declared) {
    if (spec.mutating) throw new Error(`route ${routeId} is mutating but names no audit resource in the manifest`);
    return { type: 'tenant', id: tenantId };
  }
  if (declared.id === 'work') {
    if (reported.id === undefined) throw new Error(`route ${routeId} did not report the id of its audit resource`);
    return { type: declared.type, id: reported.id };
  }
  const id = params[declared.id.param];
  if (id === undefined) throw new Error(`route ${routeId} has no path parameter ${declared.id.param} for its audit resource`);
  return { type: declared.type, id };
}
