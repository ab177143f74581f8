/**
 * The isolation matrix, generated from the route manifest: every non-public route × every role ×
 * {own tenant, other tenant, unknown tenant}, plus, for every route that takes a resource id, another
 * tenant's id under one's own path. A route added to the manifest is covered here without new test code.
 * The caller's own tenant is acme; the other is globex. Every refusal is checked to have written nothing,
 * and each route's refusals stand beside a positive control in the caller's own tenant.
 */
import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { routeList, type RouteSpec } from '../../functions/routes';
import { ROLES, type Role } from '../../functions/core/tenant';
import { startE2eStack, type E2eStack } from './support/stack';

const OWN = 'acme';
const OTHER = 'globex';
const UNKNOWN = 'no-such-tenant';
type Variant = 'own' | 'other' | 'unknown';

let stack: E2eStack;
let admin: postgres.Sql;
let cases = 0;

beforeAll(async () => {
  stack = await startE2eStack();
  admin = postgres(process.env.TEST_ADMIN_DATABASE_URL!, { max: 1, onnotice: () => undefined });
});
afterAll(async () => {
  process.stdout.write(`isolation matrix: ${cases} cases\n`);
  await admin?.end();
  await stack?.stop();
});

const protectedRoutes = routeList.filter((r) => r.auth !== 'public');
const as = (role: Role, tenantId: string) => ({ role, tenantId: role === 'superadmin' ? undefined : tenantId });

function exampleBody(route: RouteSpec): unknown {
  if (!route.body) return undefined;
  const example = { ...((route.body.examples as Record<string, unknown>[])[0] ?? {}) };
  if ('idempotencyKey' in example) example.idempotencyKey = `matrix-${randomUUID()}`;
  return example;
}

/** A document in `tenantId` created by `role` (or by org_admin for roles that cannot create). */
async function documentIn(tenantId: string, role: Role): Promise<string> {
  const creator: Role = role === 'org_admin' || role === 'user' ? role : 'org_admin';
  const response = await stack.call(`/api/${tenantId}/documents`, {
    method: 'POST',
    as: as(creator, tenantId),
    json: { name: 'matrix.txt', contentType: 'text/plain', sizeBytes: 4 },
  });
  expect(response.status).toBe(201);
  return ((await response.json()) as { document: { id: string } }).document.id;
}

async function pathFor(route: RouteSpec, tenantId: string, role: Role, documentOwner = tenantId): Promise<string> {
  let path = route.path.replace('{tenantId}', tenantId);
  if (path.includes('{documentId}')) {
    // Own variant: the caller's own resource; other variants: a real resource of the caller's tenant,
    // so that only the tenant in the path differs.
    path = path.replace('{documentId}', await documentIn(documentOwner === UNKNOWN ? OWN : documentOwner, role));
  }
  return path;
}

async function request(route: RouteSpec, path: string, role: Role, tenantId: string): Promise<Response> {
  cases++;
  return stack.call(path, { method: route.method, as: as(role, tenantId), json: exampleBody(route) });
}

/**
 * Audit events written by the request with this id, in any tenant. Every change to documents, members
 * or usage events must commit with an audit event of its own request (a deferred constraint), so a
 * refused request with none changed nothing. (Other files write to the same tenants concurrently.)
 */
async function writtenBy(response: Response): Promise<number> {
  const [row] = await admin<{ count: number }[]>`
    select count(*)::int as count from app.audit_events where request_id = ${response.headers.get('x-request-id') ?? ''}`;
  return row!.count;
}

describe.each(protectedRoutes.map((r) => [`${r.method} ${r.path}`, r] as const))('%s', (_name, route) => {
  const allowed = (role: Role) => (route.roles as readonly Role[]).includes(role);
  const positiveRole = route.roles[0] as Role;

  if (route.auth === 'platform') {
    it.each(ROLES.map((role) => [role] as const))('as %s: 200 only for the roles the manifest names, else 403', async (role) => {
      const response = await request(route, route.path, role, OWN);
      expect(await response.status).toBe(allowed(role) ? route.response.status : 403);
      if (!allowed(role)) expect(response.headers.get('content-type')).toBe('application/problem+json');
    });
    return;
  }

  it(`positive control: ${positiveRole} in its own tenant gets ${route.response.status}`, async () => {
    const response = await request(route, await pathFor(route, OWN, positiveRole), positiveRole, OWN);
    expect(response.status).toBe(route.response.status);
    // The check the refusals rely on does see a mutation's audit event.
    expect(await writtenBy(response)).toBe(route.mutating ? 1 : 0);
  });

  const grid: [Role, Variant][] = ROLES.flatMap((role) => (['own', 'other', 'unknown'] as const).map((v) => [role, v] as [Role, Variant]));
  it.each(grid)('as %s in the %s tenant', async (role, variant) => {
    const target = variant === 'own' ? OWN : variant === 'other' ? OTHER : UNKNOWN;
    const response = await request(route, await pathFor(route, target, role, OWN), role, OWN);
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

  if (route.path.includes('{documentId}')) {
    it.each(route.roles.map((role) => [role] as const))(
      'as %s: another tenant\'s resource id under its own path is 404, its own is not',
      async (role) => {
        const foreign = await documentIn(OTHER, 'org_admin');
        const own = await request(route, await pathFor(route, OWN, role), role, OWN);
        expect(own.status).toBe(route.response.status);
        const response = await request(route, route.path.replace('{tenantId}', OWN).replace('{documentId}', foreign), role, OWN);
        expect(response.status).toBe(404);
        expect(await writtenBy(response)).toBe(0);
        const [still] = await admin`select 1 from app.documents where tenant_id = ${OTHER} and id = ${foreign}`;
        expect(still).toBeDefined();
      },
    );
  }
});
