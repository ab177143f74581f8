/**
 * The manifest is the single source of truth; these checks keep it coherent as routes are added.
 */
import path from 'node:path';
import { openApiDocument } from '../../functions/platform/openapi-document';
import { routeList, routes } from '../../functions/routes';
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

describe('the OpenAPI document: answers and headers', () => {
  type Response = { description: string; headers?: Record<string, { $ref: string }>; content?: Record<string, unknown> };
  type Operation = { responses: Record<string, Response>; tags: string[]; description: string };
  const document = openApiDocument() as {
    servers: { url: string }[];
    info: { contact?: { name?: string } };
    tags: { name: string }[];
    paths: Record<string, Record<string, Operation>>;
    components: { headers: Record<string, unknown> };
  };
  const op = (id: string) => {
    const route = routeList.find((r) => r.id === id)!;
    return document.paths[route.path]![route.method.toLowerCase()]!;
  };
  const headerNames = (r: Response) => Object.keys(r.headers ?? {});

  it('names a server, a contact, and tags and describes every operation with a known tag', () => {
    expect(document.servers.length).toBeGreaterThan(0);
    expect(document.info.contact?.name).toEqual(expect.any(String));
    const tags = document.tags.map((t) => t.name);
    for (const route of routeList) {
      expect(op(route.id).tags.every((t) => tags.includes(t))).toBe(true);
      expect(op(route.id).description.length).toBeGreaterThan(0);
    }
  });

  it('documents Location on the 201 of a create and the request id and CORS headers on every answer', () => {
    expect(headerNames(op('createDocument').responses['201']!)).toContain('Location');
    for (const route of routeList) {
      for (const response of Object.values(op(route.id).responses)) {
        expect(headerNames(response)).toEqual(expect.arrayContaining(['x-request-id', 'Access-Control-Allow-Origin', 'Access-Control-Expose-Headers']));
        for (const h of Object.values(response.headers ?? {})) expect(document.components.headers[h.$ref.split('/').pop()!]).toBeDefined();
      }
    }
  });

  it('documents the per-second RateLimit fields and the quota headers on a 429, and the quota headers on metered successes', () => {
    const refused = op('listDocuments').responses['429']!;
    expect(headerNames(refused)).toEqual(expect.arrayContaining(['Retry-After', 'RateLimit-Limit', 'RateLimit-Policy', 'X-Quota-Metric', 'X-Quota-Limit']));
    expect(headerNames(op('listDocuments').responses['200']!)).toEqual(expect.arrayContaining(['X-Quota-Limit', 'X-Quota-Remaining', 'X-Quota-Reset']));
    expect(headerNames(op('listDocuments').responses['200']!)).not.toContain('RateLimit-Limit');
    expect(headerNames(op('health').responses['200']!)).not.toContain('X-Quota-Limit');
  });

  it('documents the 409 of a reused usage-event key and the fields the handlers return', () => {
    expect(op('recordUsageEvent').responses['409']).toBeDefined();
    const billing = routes.getBilling.response.schema as { properties: Record<string, unknown> };
    expect(Object.keys(billing.properties)).toContain('monthlyMetrics');
    const audit = routes.listAuditEvents.response.schema as { properties: { items: { items: { properties: Record<string, unknown> } } } };
    expect(Object.keys(audit.properties.items.items.properties)).toContain('outcome');
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
