import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { spawnSync } from 'node:child_process';
import { errorStatuses, openApiDocument } from '../../../functions/platform/openapi-document';
import { routeList, type RouteSpec } from '../../../functions/routes';

type Schema = Record<string, unknown>;

/**
 * The validator's verdict on `spec`. It is an ES module, which Jest (CommonJS under ts-jest) cannot
 * load in-process on Node 20, so it runs in a child Node.
 */
function thirdPartyVerdict(spec: unknown): { valid: boolean; errors?: unknown } {
  const script = `
    import { Validator } from '@seriousme/openapi-schema-validator';
    let input = '';
    for await (const chunk of process.stdin) input += chunk;
    const result = await new Validator().validate(JSON.parse(input));
    process.stdout.write(JSON.stringify({ valid: result.valid, errors: result.errors }));`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { input: JSON.stringify(spec), encoding: 'utf8', timeout: 60_000 });
  if (child.status !== 0) throw new Error(`the validator did not run: ${child.stderr}`);
  return JSON.parse(child.stdout) as { valid: boolean; errors?: unknown };
}
type Operation = { responses: Record<string, { content?: Record<string, { schema: Schema }>; headers?: Record<string, { $ref: string }> }> };
const document = openApiDocument() as { paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, Schema> } };
const operationOf = (route: RouteSpec) => document.paths[route.path]![route.method.toLowerCase()]!;

const base = { method: 'GET', path: '/x', handler: 'x/y', summary: 'x', mutating: false, meters: [], usesStorage: false, response: { status: 200 } } as const;

/** Every object schema under `schema` that lists properties but lets others through, by JSON pointer. */
function openObjects(schema: unknown, at: string): string[] {
  if (typeof schema !== 'object' || schema === null) return [];
  const node = schema as Schema;
  const here = node.properties !== undefined && node.additionalProperties !== false ? [at] : [];
  return [...here, ...Object.entries(node).flatMap(([key, value]) => openObjects(value, `${at}/${key}`))];
}

describe('the OpenAPI document, checked by a third-party validator', () => {
  it('is a valid OpenAPI 3.1 document for @seriousme/openapi-schema-validator', () => {
    // Act
    const result = thirdPartyVerdict(openApiDocument());

    // Assess
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('is refused by that validator when an operation has no responses (the check can fail)', () => {
    const broken = openApiDocument() as { paths: Record<string, Record<string, { responses?: unknown }>> };
    delete broken.paths['/health']!.get!.responses;
    broken.paths['/health']!.get!.responses = 'none';
    expect(thirdPartyVerdict(broken).valid).toBe(false);
  });

  it('has only response schemas that are valid JSON Schema 2020-12 under strict ajv', () => {
    const ajv = addFormats(new Ajv2020({ strict: true }));
    ajv.addSchema(document.components.schemas.Problem!, 'problem');
    for (const route of routeList) {
      for (const response of Object.values(operationOf(route).responses)) {
        for (const media of Object.values(response.content ?? {})) {
          const schema = JSON.parse(JSON.stringify(media.schema).replaceAll('#/components/schemas/Problem', 'problem')) as Schema;
          expect(() => ajv.compile(schema)).not.toThrow();
        }
      }
    }
  });
});

describe('the statuses of each operation, derived from the manifest', () => {
  it('gives a public route without input no error status', () => {
    expect(errorStatuses({ ...base, auth: 'public', roles: [] })).toEqual([]);
  });

  it('gives a metered tenant route with a body and a path id 400, 401, 403, 404, 413, 415, 429 and 503', () => {
    const spec: RouteSpec = {
      ...base, method: 'POST', path: '/api/{tenantId}/things/{thingId}', auth: 'tenant', roles: ['org_admin'],
      meters: ['api_requests'], body: { type: 'object' },
    };
    expect(errorStatuses(spec)).toEqual([400, 401, 403, 404, 413, 415, 429, 503]);
  });

  it('gives a platform list route 400 for its query, 401, 403 and 503, and no 404 or 429', () => {
    const spec: RouteSpec = { ...base, path: '/api/things', auth: 'platform', roles: ['superadmin'], query: { limit: { type: 'integer' } } };
    expect(errorStatuses(spec)).toEqual([400, 401, 403, 503]);
  });

  it('adds the statuses a route declares in errors, once', () => {
    const spec: RouteSpec = { ...base, path: '/api/{tenantId}/things', auth: 'tenant', roles: ['user'], errors: [409, 404] };
    expect(errorStatuses(spec)).toEqual([401, 403, 404, 409, 503]);
  });

  it('documents exactly the derived statuses and the success status of every manifest route, errors as problem+json', () => {
    for (const route of routeList) {
      const responses = operationOf(route).responses;
      expect(Object.keys(responses).sort()).toEqual([String(route.response.status), ...errorStatuses(route).map(String)].sort());
      for (const status of errorStatuses(route)) {
        expect(responses[String(status)]!.content).toEqual({ 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } });
      }
    }
  });

  it('documents WWW-Authenticate on 401 and Retry-After on 429 and 503', () => {
    for (const route of routeList.filter((r) => r.auth !== 'public')) {
      const responses = operationOf(route).responses;
      expect(Object.keys(responses['401']!.headers!)).toContain('WWW-Authenticate');
      expect(Object.keys(responses['503']!.headers!)).toContain('Retry-After');
      if (responses['429']) expect(Object.keys(responses['429'].headers!)).toContain('Retry-After');
    }
  });
});

describe('the response bodies of our own routes', () => {
  it('closes every object with additionalProperties: false (the OpenAPI document itself aside)', () => {
    const open = routeList
      .filter((r) => r.id !== 'openapi')
      .flatMap((r) => Object.entries(operationOf(r).responses).flatMap(([status, response]) => openObjects(response.content, `${r.id}/${status}`)));
    expect(open).toEqual([]);
    expect(openObjects(document.components.schemas, 'components/schemas')).toEqual([]);
  });
});
