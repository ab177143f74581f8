/**
 * The isolation matrix, generated from route specs: every non-public route × every role × {own tenant,
 * other tenant, unknown tenant}, plus, for every id parameter of a route, another tenant's id under
 * one's own path. Ids come from the fixture table (resource-fixtures.ts), so a new route, whatever its
 * `{somethingId}` is called, is covered without new test code, and a route whose id has no fixture fails
 * loudly. The caller's own tenant is acme; the other is globex. Every refusal is checked to have written
 * nothing, and each route's refusals stand beside a positive control in the caller's own tenant.
 */
import { randomUUID } from 'node:crypto';
import type postgres from 'postgres';
import type { RouteSpec } from '../../../functions/routes';
import { ROLES, type Role } from '../../../functions/core/tenant';
import { fixtureFor, idParameters, type ResourceFixtures } from './resource-fixtures';
import type { E2eStack } from './stack';

export const OWN = 'acme';
export const OTHER = 'globex';
export const UNKNOWN = 'no-such-tenant';
type Variant = 'own' | 'other' | 'unknown';

export interface MatrixContext {
  /** The running stack and a superuser connection, available once the file's beforeAll has run. */
  readonly stack: () => E2eStack;
  readonly admin: () => postgres.Sql;
  readonly fixtures: ResourceFixtures;
  /** Counts each request made. */
  readonly counted?: () => void;
}

const as = (role: Role, tenantId: string) => ({ role, tenantId: role === 'superadmin' ? undefined : tenantId });

function exampleBody(route: RouteSpec): unknown {
  if (!route.body) return undefined;
  const example = { ...((route.body.examples as Record<string, unknown>[])[0] ?? {}) };
  if ('idempotencyKey' in example) example.idempotencyKey = `matrix-${randomUUID()}`;
  // An email is unique per tenant and per user pool: each request adds a new person.
  if ('email' in example) example.email = `matrix-${randomUUID()}@example.com`;
  return example;
}

/**
 * The route's path for `tenantId` with every id parameter filled by a real resource of `owner` (the
 * caller's own tenant, so that only the tenant in the path differs). Rejects, naming the parameter,
 * when the fixture table has no entry for one.
 */
export async function pathFor(
  ctx: Pick<MatrixContext, 'stack' | 'fixtures'>,
  route: RouteSpec,
  tenantId: string,
  role: Role,
  owner = tenantId,
  replace: Readonly<Record<string, string>> = {},
): Promise<string> {
  let path = route.path.replace('{tenantId}', tenantId);
  for (const parameter of idParameters(route.path)) {
    const id = replace[parameter] ?? (await fixtureFor(ctx.fixtures, parameter).create(ctx.stack(), owner === UNKNOWN ? OWN : owner, role));
    path = path.replace(`{${parameter}}`, encodeURIComponent(id));
  }
  return path;
}

/** Defines the matrix's tests for `routes` (call at the top level of a test file). */
export function describeIsolationMatrix(routes: readonly RouteSpec[], ctx: MatrixContext): void {
  async function request(route: RouteSpec, path: string, role: Role, tenantId: string): Promise<Response> {
    ctx.counted?.();
    return ctx.stack().call(path, { method: route.method, as: as(role, tenantId), json: exampleBody(route) });
  }

  /**
   * Audit events written by the request with this id, in any tenant. Every audited change must commit
   * with an audit event of its own request (a deferred constraint), so a refused request with none
   * changed nothing. (Other files write to the same tenants concurrently.)
   */
  /**
   * A platform route's `{tenantId}`: a tenant onboarded for this one case through `POST /api/tenants`,
   * so that a PATCH (suspend) or DELETE (offboard) of the example touches no tenant other tests use.
   */
  async function onboarded(): Promise<string> {
    const id = `matrix-${randomUUID().replace(/-/g, '').slice(0, 12)}`;
    const response = await ctx.stack().call('/api/tenants', {
      method: 'POST',
      as: as('superadmin', OWN),
      json: { id, name: 'Matrix tenant', planId: 'free', admin: { email: `admin@${id}.example.com` } },
    });
    if (response.status !== 201) throw new Error(`onboarding ${id} answered ${response.status}`);
    return id;
  }

  async function writtenBy(response: Response): Promise<number> {
    const [row] = await ctx.admin()<{ count: number }[]>`
      select count(*)::int as count from app.audit_events where request_id = ${response.headers.get('x-request-id') ?? ''}`;
    return row!.count;
  }

  describe.each(routes.filter((r) => r.auth !== 'public').map((r) => [`${r.method} ${r.path}`, r] as const))('%s', (_name, route) => {
    const allowed = (role: Role) => (route.roles as readonly Role[]).includes(role);
    const positiveRole = route.roles[0] as Role;

    if (route.auth === 'platform') {
      it.each(ROLES.map((role) => [role] as const))('as %s: 200 only for the roles the manifest names, else 403', async (role) => {
        const path = route.path.includes('{tenantId}') ? route.path.replace('{tenantId}', await onboarded()) : route.path;
        const response = await request(route, path, role, OWN);
        expect(response.status).toBe(allowed(role) ? route.response.status : 403);
        if (!allowed(role)) expect(response.headers.get('content-type')).toBe('application/problem+json');
      });
      return;
    }

    it(`positive control: ${positiveRole} in its own tenant gets ${route.response.status}`, async () => {
      const response = await request(route, await pathFor(ctx, route, OWN, positiveRole), positiveRole, OWN);
      expect(response.status).toBe(route.response.status);
      // The check the refusals rely on does see a mutation's audit event.
      expect(await writtenBy(response)).toBe(route.mutating ? 1 : 0);
    });

    const grid: [Role, Variant][] = ROLES.flatMap((role) => (['own', 'other', 'unknown'] as const).map((v) => [role, v] as [Role, Variant]));
    it.each(grid)('as %s in the %s tenant', async (role, variant) => {
      const target = variant === 'own' ? OWN : variant === 'other' ? OTHER : UNKNOWN;
      const response = await request(route, await pathFor(ctx, route, target, role, OWN), role, OWN);
      const expected = variant === 'own' && allowed(role) ? route.response.status : 403;
      expect({ status: response.status }).toEqual({ status: expected });
      if (expected === 403) {
        expect(response.headers.get('content-type')).toBe('application/problem+json');
        const body = (await response.json()) as { detail: string };
        // Never say whether the other tenant or its resource exists.
        expect(body.detail).not.toMatch(/globex|no-such-tenant|exist/i);
        expect(await writtenBy(response)).toBe(0);
      }
    });

    for (const parameter of idParameters(route.path)) {
      it.each(route.roles.map((role) => [role] as const))(
        `as %s: another tenant's {${parameter}} under its own path is 404, its own is not`,
        async (role) => {
          const fixture = fixtureFor(ctx.fixtures, parameter);
          const foreign = await fixture.create(ctx.stack(), OTHER, 'org_admin');
          const own = await request(route, await pathFor(ctx, route, OWN, role), role, OWN);
          expect(own.status).toBe(route.response.status);
          const response = await request(route, await pathFor(ctx, route, OWN, role, OWN, { [parameter]: foreign }), role, OWN);
          expect(response.status).toBe(404);
          expect(await writtenBy(response)).toBe(0);
          expect(await fixture.exists(ctx.admin(), OTHER, foreign)).toBe(true);
        },
      );
    }
  });
}
