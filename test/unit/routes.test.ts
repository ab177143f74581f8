/**
 * The manifest is the single source of truth; these checks keep it coherent as routes are added.
 */
import path from 'node:path';
import { openApiDocument } from '../../functions/platform/openapi-document';
import { routeList } from '../../functions/routes';
import { ROLES } from '../../functions/core/tenant';

describe('the route manifest', () => {
  it('points every route at a handler module that exports a handler function', () => {
    for (const route of routeList) {
      // A real require, as the local server and the Lambda runtime load it (not a type-level check).
      const loaded = require(path.join(__dirname, '../../functions', route.handler)) as { handler?: unknown };
      expect({ route: route.id, handler: typeof loaded.handler }).toEqual({ route: route.id, handler: 'function' });
    }
  });

  it('names the audit resource of every mutating route', () => {
    for (const route of routeList.filter((r) => r.mutating)) {
      expect({ route: route.id, audit: typeof route.audit?.type }).toEqual({ route: route.id, audit: 'string' });
      const id = route.audit!.id;
      if (id !== 'work') expect(route.path).toContain(`{${id.param}}`);
    }
  });

  it('has one route per method and path', () => {
    const keys = routeList.map((r) => `${r.method} ${r.path}`);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('scopes every tenant route by a {tenantId} path parameter and gives it roles', () => {
    const tenantRoutes = routeList.filter((r) => r.auth === 'tenant');
    expect(tenantRoutes.length).toBeGreaterThan(5);
    for (const route of tenantRoutes) {
      expect(route.path.startsWith('/api/{tenantId}/')).toBe(true);
      expect(route.roles.length).toBeGreaterThan(0);
      expect(route.roles.every((role) => (ROLES as readonly string[]).includes(role))).toBe(true);
    }
  });

  it('keeps public routes to health and the API description', () => {
    expect(routeList.filter((r) => r.auth === 'public').map((r) => r.path).sort()).toEqual(['/health', '/openapi.json']);
  });

  it('meters every tenant route by api_requests and audits every mutating one', () => {
    for (const route of routeList.filter((r) => r.auth === 'tenant')) {
      expect({ route: route.id, metered: route.meters.includes('api_requests') }).toEqual({ route: route.id, metered: true });
    }
    expect(routeList.filter((r) => r.method !== 'GET').every((r) => r.mutating)).toBe(true);
  });
});

describe('the OpenAPI document', () => {
  const document = openApiDocument() as { openapi: string; paths: Record<string, Record<string, { operationId: string; security: unknown[] }>> };

  it('is OpenAPI 3.1 and lists every manifest route once', () => {
    expect(document.openapi).toBe('3.1.0');
    const operations = Object.values(document.paths).flatMap((methods) => Object.values(methods).map((op) => op.operationId));
    expect(operations.sort()).toEqual(routeList.map((r) => r.id).sort());
  });

  it('requires the bearer ID token on every non-public route', () => {
    for (const route of routeList) {
      const op = document.paths[route.path]![route.method.toLowerCase()]!;
      expect(op.security.length).toBe(route.auth === 'public' ? 0 : 1);
    }
  });
});

describe('body examples', () => {
  it('gives every route that takes a body a valid example', () => {
    for (const route of routeList.filter((r) => r.body)) {
      const example = (route.body!.examples as unknown[] | undefined)?.[0] as Record<string, unknown> | undefined;
      expect({ route: route.id, hasExample: example !== undefined }).toEqual({ route: route.id, hasExample: true });
      const required = (route.body!.required as string[]) ?? [];
      expect(Object.keys(example!).sort()).toEqual(expect.arrayContaining(required));
    }
  });
});
