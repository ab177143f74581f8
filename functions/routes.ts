/**
 * THE route manifest: every route once. From this one list the CDK app creates one Lambda and one API
 * Gateway method per route, the local server dispatches requests, the OpenAPI document is generated and
 * the isolation test matrix is built. Secure by default: a route is authenticated and tenant-scoped
 * unless it says `auth: 'public'` (or `'platform'` for platform operators) in words.
 *
 * Adding a tenant-scoped feature: one handler file under functions/<area>/, one entry here (and in
 * `HandlerModules` below, which makes a missing handler file a compile error), one migration.
 */
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import type { Role } from './core/tenant';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
export const METRICS = ['api_requests', 'documents', 'storage_bytes', 'ai_tokens'] as const;
export type Metric = (typeof METRICS)[number];

/** A JSON Schema (draft 2020-12 subset) used for OpenAPI and API Gateway request models. */
export type JsonSchema = { readonly [key: string]: unknown };

/** Every handler module exports `handler`; listing them here makes a missing file a type error. */
export interface HandlerModules {
  'platform/health': typeof import('./platform/health');
  'platform/openapi': typeof import('./platform/openapi');
  'platform/list-tenants': typeof import('./platform/list-tenants');
  'documents/list': typeof import('./documents/list');
  'documents/create': typeof import('./documents/create');
  'documents/get': typeof import('./documents/get');
  'documents/delete': typeof import('./documents/delete');
  'billing/get': typeof import('./billing/get');
  'usage/record-event': typeof import('./usage/record-event');
  'members/list': typeof import('./members/list');
  'audit/list': typeof import('./audit/list');
}
export type HandlerPath = keyof HandlerModules;
export type LambdaHandler = (event: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult>;
// Compile-time check that every listed module exports a Lambda handler.
type AssertHandlers<T extends { [K in HandlerPath]: { handler: LambdaHandler } }> = T;
export type CheckedHandlerModules = AssertHandlers<HandlerModules>;

interface RouteBase {
  readonly method: HttpMethod;
  /** API Gateway path syntax: `/api/{tenantId}/documents/{documentId}`. */
  readonly path: string;
  /** Handler file under functions/, without extension; it exports `handler`. */
  readonly handler: HandlerPath;
  readonly summary: string;
  /** Changes state: the request writes an audit event in the same transaction. */
  readonly mutating: boolean;
  /** Usage metrics the route moves (metered inside the request's transaction). */
  readonly meters: readonly Metric[];
  /** The route reaches S3 through STS-scoped tenant credentials. */
  readonly usesStorage: boolean;
  /** The route unwraps tenant PII data keys with KMS (kms:Decrypt on the PII key). */
  readonly usesPii?: boolean;
  /** JSON body schema, when the route takes a body; its first `examples` entry must be a valid body. */
  readonly body?: JsonSchema;
  /** Query parameters, by name. */
  readonly query?: { readonly [name: string]: JsonSchema };
  /** Success status and body schema. */
  readonly response: { readonly status: number; readonly schema?: JsonSchema };
}

export interface PublicRoute extends RouteBase {
  readonly auth: 'public';
  readonly roles: readonly [];
}
export interface TenantRoute extends RouteBase {
  readonly auth: 'tenant';
  /** Roles allowed; `superadmin` only where platform operators may act inside a tenant (audited). */
  readonly roles: readonly [Role, ...Role[]];
}
export interface PlatformRoute extends RouteBase {
  readonly auth: 'platform';
  readonly roles: readonly ['superadmin'];
}
export type RouteSpec = PublicRoute | TenantRoute | PlatformRoute;

const uuid: JsonSchema = { type: 'string', format: 'uuid' };
const timestamp: JsonSchema = { type: 'string', format: 'date-time' };
const listQuery = {
  limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 },
  cursor: { type: 'string', maxLength: 512, description: 'Opaque; from nextCursor of the previous page.' },
} as const;
const page = (item: JsonSchema): JsonSchema => ({
  type: 'object',
  required: ['items', 'nextCursor'],
  properties: { items: { type: 'array', items: item }, nextCursor: { type: ['string', 'null'] } },
});
export const documentSchema: JsonSchema = {
  type: 'object',
  required: ['id', 'tenantId', 'name', 'contentType', 'sizeBytes', 'status', 'createdBy', 'createdAt'],
  properties: {
    id: uuid,
    tenantId: { type: 'string' },
    name: { type: 'string' },
    contentType: { type: 'string' },
    sizeBytes: { type: 'integer' },
    status: { type: 'string', enum: ['pending', 'available'] },
    createdBy: uuid,
    createdAt: timestamp,
  },
};
const metricMap: JsonSchema = {
  type: 'object',
  properties: Object.fromEntries(['api_requests', 'documents', 'storage_bytes', 'ai_tokens'].map((m) => [m, { type: ['integer', 'null'] }])),
};

/** The routes, keyed by a stable id (used for Lambda names, OpenAPI operationId and logs). */
export const routes = {
  health: {
    method: 'GET', path: '/health', handler: 'platform/health', summary: 'Liveness', auth: 'public', roles: [],
    mutating: false, meters: [], usesStorage: false,
    response: { status: 200, schema: { type: 'object', required: ['status'], properties: { status: { const: 'ok' } } } },
  },
  openapi: {
    method: 'GET', path: '/openapi.json', handler: 'platform/openapi', summary: 'This API as OpenAPI 3.1', auth: 'public',
    roles: [], mutating: false, meters: [], usesStorage: false, response: { status: 200, schema: { type: 'object' } },
  },
  listTenants: {
    method: 'GET', path: '/api/tenants', handler: 'platform/list-tenants', summary: 'List tenants with plan and status',
    auth: 'platform', roles: ['superadmin'], mutating: false, meters: [], usesStorage: false, query: listQuery,
    response: {
      status: 200,
      schema: page({
        type: 'object',
        properties: { id: { type: 'string' }, name: { type: 'string' }, planId: { type: 'string' }, status: { type: 'string' }, createdAt: timestamp },
      }),
    },
  },
  listDocuments: {
    method: 'GET', path: '/api/{tenantId}/documents', handler: 'documents/list', summary: 'List documents, newest first',
    auth: 'tenant', roles: ['org_admin', 'user', 'readonly'], mutating: false, meters: ['api_requests'], usesStorage: false,
    query: listQuery, response: { status: 200, schema: page(documentSchema) },
  },
  createDocument: {
    method: 'POST', path: '/api/{tenantId}/documents', handler: 'documents/create',
    summary: 'Create a document and get a presigned upload URL', auth: 'tenant', roles: ['org_admin', 'user'],
    mutating: true, meters: ['api_requests', 'documents', 'storage_bytes'], usesStorage: true,
    body: {
      type: 'object', additionalProperties: false, required: ['name', 'contentType', 'sizeBytes'],
      properties: {
        name: { type: 'string', minLength: 1, maxLength: 255 },
        contentType: { type: 'string', minLength: 3, maxLength: 255 },
        sizeBytes: { type: 'integer', minimum: 1, maximum: 5368709120 },
      },
      examples: [{ name: 'Q3 report.pdf', contentType: 'application/pdf', sizeBytes: 1024 }],
    },
    response: {
      status: 201,
      schema: {
        type: 'object', required: ['document', 'upload'],
        properties: {
          document: documentSchema,
          upload: {
            type: 'object', required: ['url', 'method', 'headers', 'expiresAt'],
            properties: { url: { type: 'string' }, method: { const: 'PUT' }, headers: { type: 'object' }, expiresAt: timestamp },
          },
        },
      },
    },
  },
  getDocument: {
    method: 'GET', path: '/api/{tenantId}/documents/{documentId}', handler: 'documents/get',
    summary: 'Get a document and a presigned download URL', auth: 'tenant', roles: ['org_admin', 'user', 'readonly'],
    mutating: false, meters: ['api_requests'], usesStorage: true,
    response: {
      status: 200,
      schema: {
        type: 'object', required: ['document', 'download'],
        properties: {
          document: documentSchema,
          download: {
            type: ['object', 'null'], description: 'null while the upload has not arrived',
            properties: { url: { type: 'string' }, expiresAt: timestamp },
          },
        },
      },
    },
  },
  deleteDocument: {
    method: 'DELETE', path: '/api/{tenantId}/documents/{documentId}', handler: 'documents/delete',
    summary: 'Delete a document and its object (org_admin; user for documents they created)', auth: 'tenant',
    roles: ['org_admin', 'user'], mutating: true, meters: ['api_requests', 'documents', 'storage_bytes'], usesStorage: true,
    response: { status: 204 },
  },
  getBilling: {
    method: 'GET', path: '/api/{tenantId}/billing', handler: 'billing/get', summary: 'Plan, period, usage and estimated charges',
    auth: 'tenant', roles: ['org_admin'], mutating: false, meters: ['api_requests'], usesStorage: false,
    response: {
      status: 200,
      schema: {
        type: 'object', required: ['tenantId', 'plan', 'period', 'usage', 'monthlyMetrics', 'estimatedCharges'],
        properties: {
          tenantId: { type: 'string' },
          plan: { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' }, limits: metricMap } },
          period: { type: 'object', properties: { start: timestamp, end: timestamp } },
          usage: metricMap,
          monthlyMetrics: { type: 'array', items: { type: 'string' }, description: 'The metrics counted per month; the others are standing totals.' },
          estimatedCharges: { type: 'object', properties: { currency: { type: 'string' }, amount: { type: 'string' } } },
        },
        additionalProperties: false,
      },
    },
  },
  recordUsageEvent: {
    method: 'POST', path: '/api/{tenantId}/usage-events', handler: 'usage/record-event',
    summary: 'Record metered usage, idempotently', auth: 'tenant', roles: ['org_admin', 'user'], mutating: true,
    meters: ['api_requests'], usesStorage: false,
    body: {
      type: 'object', additionalProperties: false, required: ['metric', 'quantity', 'idempotencyKey'],
      properties: {
        metric: { type: 'string', enum: ['ai_tokens'], description: 'Client-reported metrics; requests, documents and storage are metered by the API itself.' },
        quantity: { type: 'integer', minimum: 1, maximum: 1000000000 },
        idempotencyKey: { type: 'string', minLength: 1, maxLength: 255 },
      },
      examples: [{ metric: 'ai_tokens', quantity: 1200, idempotencyKey: 'completion-7f3a' }],
    },
    response: {
      status: 202,
      schema: {
        type: 'object', additionalProperties: false, required: ['id', 'metric', 'quantity', 'duplicate'],
        description: 'used and limit are sent when the event was recorded now (duplicate: false).',
        properties: {
          id: uuid, metric: { type: 'string' }, quantity: { type: 'integer' }, duplicate: { type: 'boolean' },
          used: { type: 'integer' }, limit: { type: ['integer', 'null'] },
        },
      },
    },
  },
  listMembers: {
    method: 'GET', path: '/api/{tenantId}/members', handler: 'members/list', summary: 'List members', auth: 'tenant',
    roles: ['org_admin'], mutating: false, meters: ['api_requests'], usesStorage: false, usesPii: true, query: listQuery,
    response: {
      status: 200,
      schema: page({
        type: 'object',
        required: ['userId', 'email', 'role', 'status'], additionalProperties: false,
        properties: { userId: uuid, email: { type: ['string', 'null'] }, role: { type: 'string' }, status: { type: 'string' } },
      }),
    },
  },
  listAuditEvents: {
    method: 'GET', path: '/api/{tenantId}/audit-events', handler: 'audit/list', summary: 'List audit events, newest first',
    auth: 'tenant', roles: ['org_admin'], mutating: false, meters: ['api_requests'], usesStorage: false, query: listQuery,
    response: {
      status: 200,
      schema: page({
        type: 'object',
        properties: {
          id: uuid, occurredAt: timestamp, actorUserId: uuid, actorRole: { type: 'string' }, action: { type: 'string' },
          resourceType: { type: 'string' }, resourceId: { type: ['string', 'null'] }, requestId: { type: 'string' },
          outcome: { type: 'string', enum: ['success', 'denied'] },
          // The event's link in the tenant's hash chain (SHA-256, hex); null until the sealer has chained it.
          seq: { type: ['integer', 'null'], minimum: 1 }, prevHash: { type: ['string', 'null'] }, hash: { type: ['string', 'null'] },
        },
        additionalProperties: false,
      }),
    },
  },
} as const satisfies Record<string, RouteSpec>;

export type RouteId = keyof typeof routes;
export type AnyRoute = (typeof routes)[RouteId];

/** The manifest as a list, with ids. */
export const routeList: ReadonlyArray<RouteSpec & { readonly id: RouteId }> = (Object.keys(routes) as RouteId[]).map(
  (id) => ({ id, ...(routes[id] as RouteSpec) }),
);
