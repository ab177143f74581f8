/**
 * Builds the OpenAPI 3.1 document from the route manifest: paths, parameters, request bodies, success
 * responses, the problem+json error responses, and the bearer (Cognito ID token) security scheme.
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

function errorsFor(route: RouteSpec): Record<string, unknown> {
  const codes = route.auth === 'public' ? ['500'] : ['400', '401', '403', '404', '429', '503'];
  if (route.body) codes.push('413', '415');
  return Object.fromEntries(
    codes.sort().map((code) => [
      code,
      { description: 'Problem', content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } },
    ]),
  );
}

export function openApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routeList) {
    const pathParams = [...route.path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
    const operation: Record<string, unknown> = {
      operationId: route.id,
      summary: route.summary,
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
          ? { description: 'Success', content: { 'application/json': { schema: route.response.schema } } }
          : { description: 'Success, no content' },
        ...errorsFor(route),
      },
    };
    if (route.body) {
      operation.requestBody = { required: true, content: { 'application/json': { schema: route.body } } };
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
    },
    paths,
    components: {
      schemas: { Problem: problemSchema },
      securitySchemes: {
        cognitoIdToken: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'A Cognito ID token.' },
      },
    },
  };
}
