/**
 * Builds the OpenAPI 3.1 document from the route manifest: paths, parameters, request bodies, success
 * responses, the problem+json error responses, the response headers (request id, CORS, Location,
 * Retry-After, the per-second RateLimit fields and the X-Quota headers), and the bearer (Cognito ID
 * token) security scheme.
 */
import { TENANT_ID_PATTERN } from '../core/tenant';
import { routeList, type JsonSchema, type RouteSpec } from '../routes';

const problemSchema: JsonSchema = {
  type: 'object',
  description: 'An RFC 9457 problem. `detail` is safe to show; it never names another tenant\'s data.',
  required: ['type', 'title', 'status', 'detail', 'instance'],
  additionalProperties: false,
  properties: {
    type: { type: 'string', description: 'A URI naming the kind of problem, or `about:blank`.' },
    title: { type: 'string' },
    status: { type: 'integer', minimum: 400, maximum: 599 },
    detail: { type: 'string' },
    instance: { type: 'string', description: 'The request id (also in x-request-id).' },
  },
  examples: [
    {
      type: 'https://problems.tenant-sovereign.dev/forbidden',
      title: 'Forbidden',
      status: 403,
      detail: 'The token is not valid for this tenant.',
      instance: 'c0a8012e-6f1c-4c1e-9a57-3f0d6f3b2a10',
    },
  ],
};

const header = (description: string, schema: JsonSchema = { type: 'string' }) => ({ description, schema });
/** A header every answer of its kind carries. */
const always = (description: string, schema: JsonSchema = { type: 'string' }) => ({ description, required: true, schema });
const integer = { type: 'integer', minimum: 0 };

/** Response headers, by component name; see docs/API.md for what each means. */
const headers = {
  XRequestId: always('The request id (also the `instance` of a problem).'),
  CacheControl: always('`no-store`: answers are per caller.', { const: 'no-store' }),
  XContentTypeOptions: always('`nosniff`.', { const: 'nosniff' }),
  WWWAuthenticate: always('`Bearer realm="api", error="invalid_token"` (RFC 6750).'),
  Location: always('The API path of the created resource, relative to the base URL of the API.'),
  RetryAfter: always('Seconds to wait before retrying.', integer),
  AccessControlAllowOrigin: header('The calling origin, when it is an allowed origin (never `*`); absent otherwise.'),
  AccessControlExposeHeaders: header('The response headers a browser script may read; sent with Access-Control-Allow-Origin.'),
  Vary: header('`Origin`: the CORS headers depend on it.'),
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
const common = { 'x-request-id': 'XRequestId', 'Cache-Control': 'CacheControl', 'X-Content-Type-Options': 'XContentTypeOptions', 'Access-Control-Allow-Origin': 'AccessControlAllowOrigin', 'Access-Control-Expose-Headers': 'AccessControlExposeHeaders', Vary: 'Vary' } as const;
const quota = { 'X-Quota-Metric': 'XQuotaMetric', 'X-Quota-Limit': 'XQuotaLimit', 'X-Quota-Remaining': 'XQuotaRemaining', 'X-Quota-Reset': 'XQuotaReset' } as const;
const rate = { 'RateLimit-Limit': 'RateLimitLimit', 'RateLimit-Remaining': 'RateLimitRemaining', 'RateLimit-Reset': 'RateLimitReset', 'RateLimit-Policy': 'RateLimitPolicy' } as const;

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'Invalid input (the body, or a query parameter); nothing changed.',
  401: 'Missing or invalid ID token.',
  403: 'Another tenant, a role the route does not allow, an inactive member or a suspended tenant.',
  404: "No such resource in the caller's tenant (a malformed id included), or no such tenant.",
  409: 'The request conflicts with the current state (an idempotency key used with another payload, a document whose bytes are missing from storage, a member or tenant rule); nothing changed.',
  413: 'The body is larger than 64 KiB.',
  415: 'The body is not application/json.',
  429: 'A rate limit or plan quota is used up; nothing was recorded.',
  503: 'A dependency is unavailable; retry after Retry-After.',
};

/**
 * Every error status `route` can answer, derived from its manifest fields only, so that a new route is
 * documented without touching this file: a body can be malformed (400), too large (413) or of another
 * type (415); a query can be invalid (400); an authenticated route refuses a token (401) or a caller
 * (403) and depends on the database (503); a tenant in the path or a path id can name nothing (404); a
 * metered route can be over its rate or quota (429). What only the route's work knows (a conflict) is in
 * its `errors`.
 */
export function errorStatuses(route: RouteSpec): number[] {
  const codes = new Set<number>(route.errors ?? []);
  if (route.body) [400, 413, 415].forEach((c) => codes.add(c));
  if (route.query && Object.keys(route.query).length > 0) codes.add(400);
  if (route.auth !== 'public') [401, 403, 503].forEach((c) => codes.add(c));
  if (/\{[^}]+\}/.test(route.path)) codes.add(404);
  if (route.meters.length > 0) codes.add(429);
  return [...codes].sort((a, b) => a - b);
}

function errorsFor(route: RouteSpec): Record<string, unknown> {
  return Object.fromEntries(
    errorStatuses(route).map((code) => [
      String(code),
      {
        description: ERROR_DESCRIPTIONS[code] ?? 'Refused; nothing changed.',
        headers: headerSet({
          ...common,
          ...(code === 401 ? { 'WWW-Authenticate': 'WWWAuthenticate' } : {}),
          ...(code === 429 ? { 'Retry-After': 'RetryAfter', ...rate, ...quota } : {}),
          ...(code === 503 ? { 'Retry-After': 'RetryAfter' } : {}),
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

/** The document of `routes` (the manifest unless a test serves more routes beside it). */
export function openApiDocument(routes: ReadonlyArray<RouteSpec & { readonly id: string }> = routeList): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
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
          description: name === 'tenantId' ? "The tenant's id; it must be the token's tenant." : 'A server-generated id; any other value names nothing (404).',
          schema: name === 'tenantId' ? { type: 'string', pattern: TENANT_ID_PATTERN.source } : (route.params?.[name] ?? { type: 'string' }),
        })),
        ...Object.entries(route.query ?? {}).map(([name, schema]) => ({
          name,
          in: 'query',
          required: false,
          ...(typeof schema.description === 'string' ? { description: schema.description } : {}),
          schema,
        })),
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
    tags: [...new Set(routes.map(tagOf))].sort().map((name) => ({ name, description: `Routes of ${name}` })),
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
