/**
 * Builds the OpenAPI 3.1 document from the route manifest: paths, parameters, request bodies, success
 * responses, the problem+json error responses, the response headers (request id, CORS, Location,
 * Retry-After, the per-second RateLimit fields and the X-Quota headers), and the bearer (Cognito ID
 * token) security scheme.
 */
import { routeList, type JsonSchema, type RouteSpec } from '../routes';

const problemSchema: JsonSchema = {
  type: 'object',
  required: ['type', 'title', 'status', 'detail', 'instance'],
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    instance: { type: 'string', description: 'The request id (also in x-request-id).' },
  },
};

const header = (description: string, schema: JsonSchema = { type: 'string' }) => ({ description, schema });
const integer = { type: 'integer', minimum: 0 };

/** Response headers, by component name; see docs/API.md for what each means. */
const headers = {
  XRequestId: header('The request id (also the `instance` of a problem).'),
  AccessControlAllowOrigin: header('The calling origin, when it is an allowed origin (never `*`); absent otherwise.'),
  AccessControlExposeHeaders: header('The response headers a browser script may read; sent with Access-Control-Allow-Origin.'),
  Vary: header('`Origin`: the CORS headers depend on it.'),
  Location: header('The API path of the created resource.'),
  RetryAfter: header('Seconds to wait before retrying.', integer),
  RateLimitLimit: header("Requests per second the tenant's plan allows (the per-second window only).", integer),
  RateLimitRemaining: header('Requests left in the current one-second window.', integer),
  RateLimitReset: header('Seconds until the window has room again.', integer),
  RateLimitPolicy: header('The per-second window as `<limit>;w=1` (IETF RateLimit header fields draft).'),
  XQuotaMetric: header('The plan quota the X-Quota headers describe: api_requests on successes, the used-up quota on a 429.', {
    type: 'string',
    enum: ['api_requests', 'documents', 'storage_bytes', 'ai_tokens'],
  }),
  XQuotaLimit: header("That quota's limit (per UTC month for api_requests and ai_tokens; a standing total otherwise).", integer),
  XQuotaRemaining: header('What is left of that quota.', integer),
  XQuotaReset: header('Seconds until a monthly quota starts over; absent for standing totals.', integer),
} as const;
type HeaderName = keyof typeof headers;

const ref = (name: HeaderName) => ({ $ref: `#/components/headers/${name}` });
const headerSet = (names: Record<string, HeaderName>) => Object.fromEntries(Object.entries(names).map(([k, v]) => [k, ref(v)]));
const common = { 'x-request-id': 'XRequestId', 'Access-Control-Allow-Origin': 'AccessControlAllowOrigin', 'Access-Control-Expose-Headers': 'AccessControlExposeHeaders', Vary: 'Vary' } as const;
const quota = { 'X-Quota-Metric': 'XQuotaMetric', 'X-Quota-Limit': 'XQuotaLimit', 'X-Quota-Remaining': 'XQuotaRemaining', 'X-Quota-Reset': 'XQuotaReset' } as const;
const rate = { 'RateLimit-Limit': 'RateLimitLimit', 'RateLimit-Remaining': 'RateLimitRemaining', 'RateLimit-Reset': 'RateLimitReset', 'RateLimit-Policy': 'RateLimitPolicy' } as const;

/** The routes that answer 409, and what it means on each. */
const CONFLICTS: Readonly<Record<string, string>> = {
  'usage/record-event': 'The idempotency key was already used with another payload.',
  'documents/get': "The document is available but its bytes are missing from storage; delete it and upload again.",
};

const ERROR_DESCRIPTIONS: Record<string, string> = {
  '400': 'Invalid input; nothing changed.',
  '401': 'Missing or invalid ID token.',
  '403': 'Another tenant, a role the route does not allow, an inactive member or a suspended tenant.',
  '404': 'No such resource in the caller\'s tenant (or no such route).',
  '413': 'The body is larger than 64 KiB.',
  '415': 'The body is not application/json.',
  '429': 'A rate limit or plan quota is used up; nothing was recorded.',
  '500': 'An unexpected failure; the body reveals nothing.',
  '503': 'A dependency is unavailable; retry after Retry-After.',
};

function errorsFor(route: RouteSpec): Record<string, unknown> {
  const codes = route.auth === 'public' ? ['500'] : ['400', '401', '403', '404', '429', '503'];
  if (route.body) codes.push('413', '415');
  if (CONFLICTS[route.handler]) codes.push('409');
  return Object.fromEntries(
    codes.sort().map((code) => [
      code,
      {
        description: code === '409' ? CONFLICTS[route.handler]! : ERROR_DESCRIPTIONS[code]!,
        headers: headerSet({
          ...common,
          ...(code === '429' ? { 'Retry-After': 'RetryAfter', ...rate, ...quota } : {}),
          ...(code === '503' ? { 'Retry-After': 'RetryAfter' } : {}),
        }),
        content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
      },
    ]),
  );
}

function successHeaders(route: RouteSpec): Record<string, unknown> {
  return headerSet({
    ...common,
    ...(route.response.status === 201 ? { Location: 'Location' } : {}),
    ...((route.meters as readonly string[]).includes('api_requests') ? quota : {}),
  });
}

/** The area a route belongs to, as its tag: the path segment after the tenant, or `platform`. */
function tagOf(route: RouteSpec): string {
  const match = /^\/api\/\{tenantId\}\/([a-z-]+)/.exec(route.path);
  return match ? match[1]! : 'platform';
}

export function openApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routeList) {
    const pathParams = [...route.path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
    const operation: Record<string, unknown> = {
      operationId: route.id,
      summary: route.summary,
      description:
        route.auth === 'public'
          ? 'Public: no token needed.'
          : `Roles: ${route.roles.join(', ')}.${route.meters.length > 0 ? ` Meters: ${route.meters.join(', ')}.` : ''}${route.mutating ? ' Writes an audit event.' : ''}`,
      tags: [tagOf(route)],
      'x-roles': route.roles,
      'x-mutating': route.mutating,
      'x-meters': route.meters,
      security: route.auth === 'public' ? [] : [{ cognitoIdToken: [] }],
      parameters: [
        ...pathParams.map((name) => ({
          name,
          in: 'path',
          required: true,
          schema: name === 'tenantId' ? { type: 'string', pattern: '^[a-z][a-z0-9-]{1,38}[a-z0-9]$' } : { type: 'string', format: 'uuid' },
        })),
        ...Object.entries(route.query ?? {}).map(([name, schema]) => ({ name, in: 'query', required: false, schema })),
      ],
      responses: {
        [String(route.response.status)]: route.response.schema
          ? { description: 'Success', headers: successHeaders(route), content: { 'application/json': { schema: route.response.schema } } }
          : { description: 'Success, no content', headers: successHeaders(route) },
        ...errorsFor(route),
      },
    };
    if (route.body) {
      const example = (route.body.examples as unknown[] | undefined)?.[0];
      operation.requestBody = {
        required: true,
        content: { 'application/json': { schema: route.body, ...(example === undefined ? {} : { example }) } },
      };
    }
    (paths[route.path] ??= {})[route.method.toLowerCase()] = operation;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Tenant-sovereign multi-tenant API',
      version: '1.0.0',
      description: 'Every tenant route checks that the path tenant equals the token tenant. Errors are application/problem+json.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
      contact: { name: 'Tenant-sovereign backend maintainers' },
    },
    // Relative to where this document is served: the stage's base URL deployed, the server's root locally.
    servers: [{ url: '.', description: 'The API that serves this document' }],
    tags: [...new Set(routeList.map(tagOf))].sort().map((name) => ({ name, description: `Routes of ${name}` })),
    paths,
    components: {
      schemas: { Problem: problemSchema },
      headers,
      securitySchemes: {
        cognitoIdToken: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'A Cognito ID token.' },
      },
    },
  };
}
