import type { UserDirectory } from '../core/cognito';
import type { RouteContext, WithPii } from '../core/handler';
import type { Pii } from '../core/pii';
import type { MemberContext, MemberDependencies } from './membership';

/**
 * The member domain functions' context and dependencies from a route's: the wrapper's `ctx.audit` (the
 * wrapper writes the request's one audit event) and the request's tenant-bound PII keys (the tenant id a
 * domain function names is ignored for the bound one: no other tenant's key can be asked for).
 */
export function memberCall(ctx: Omit<RouteContext, 'body'> & WithPii, directory: UserDirectory): { mctx: MemberContext; deps: MemberDependencies } {
  return { mctx: ctx, deps: { pii: boundPii(ctx), directory } };
}

/** The request's tenant-bound keys in the shape the domain functions take. */
export function boundPii(ctx: WithPii): Pii {
  return {
    tenantKeys: (_tenantId, wrapped) => ctx.pii.keys(wrapped),
    newTenantKey: () => Promise.reject(new Error('a member route never creates a tenant key')),
    forgetTenantKey: () => undefined,
  };
}
