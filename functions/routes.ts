/**
 * THE route manifest: every route once. From this one list the CDK app creates one Lambda and one API
 * Gateway method (with its request model) per route, the wrapper validates each request's input, the
 * local server dispatches requests, the OpenAPI document is generated and the isolation test matrix is
 * built. Secure by default: a route is authenticated and tenant-scoped unless it says `auth: 'public'`
 * (or `'platform'` for platform operators) in words.
 *
 * It imports only core: handlers import it (`route(routes.x, work)`), core never does. The README's
 * "Add a route" recipe lists every field; `RouteSpec` in core/route-spec.ts documents them.
 */
import { EMAIL_MAX_LENGTH, EMAIL_PATTERN } from './core/email';
import { MEDIA_TYPE_MAX_LENGTH, MEDIA_TYPE_PATTERN } from './core/media-type';
import { METRICS } from './core/metrics';
import { TENANT_ID_PATTERN, UUID_PATTERN } from './core/tenant';
import { withIds, type DirectoryAction, type IdentifiedRoute, type JsonSchema, type RouteSpec } from './core/route-spec';

declare global {
  // Defined false at build time in the bundles that leave the response schemas out (see DOCS below).
  // eslint-disable-next-line no-var
  var __TENANT_ROUTE_DOCS__: boolean | undefined;
}

export type { AuditSpec, DirectoryAction, HttpMethod, JsonSchema, LambdaHandler, RouteSpec } from './core/route-spec';
export { METRICS, type Metric } from './core/metrics';

const uuid: JsonSchema = { type: 'string', format: 'uuid' };
/** A server-generated id in a path: anything else names no resource (404). */
const uuidParam: JsonSchema = { type: 'string', pattern: UUID_PATTERN.source };
const timestamp: JsonSchema = { type: 'string', format: 'date-time' };
const listQuery = {
  limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 },
  cursor: { type: 'string', maxLength: 512, description: 'Opaque; from nextCursor of the previous page.' },
} as const;
const page = (item: JsonSchema): JsonSchema => ({
  type: 'object',
  required: ['items', 'nextCursor'],
  additionalProperties: false,
  properties: { items: { type: 'array', items: item }, nextCursor: { type: ['string', 'null'] } },
});
export const documentSchema: JsonSchema = {
  type: 'object',
  required: ['id', 'tenantId', 'name', 'contentType', 'sizeBytes', 'status', 'createdBy', 'createdAt'],
  additionalProperties: false,
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
/** A tenant id: the slug rule of core/tenant.ts. */
const tenantIdParam: JsonSchema = { type: 'string', pattern: TENANT_ID_PATTERN.source };
/** A display name: printable text, not only spaces. */
const displayName: JsonSchema = { type: 'string', minLength: 1, maxLength: 200, pattern: '^(?=[\\s\\S]*\\S)[^\\u0000-\\u001f\\u007f]+$' };
/** A plan id's shape; whether the plan exists is the database's answer (400). */
const planIdSchema: JsonSchema = { type: 'string', pattern: '^[a-z][a-z0-9_-]{0,39}$' };
const emailSchema: JsonSchema = { type: 'string', maxLength: EMAIL_MAX_LENGTH, pattern: EMAIL_PATTERN };
const tenantSchema: JsonSchema = {
  type: 'object', additionalProperties: false,
  required: ['id', 'name', 'planId', 'status', 'createdAt', 'updatedAt'],
  properties: {
    id: { type: 'string' }, name: { type: 'string' }, planId: { type: 'string' },
    status: { type: 'string', enum: ['active', 'suspended', 'offboarding', 'deleted'] },
    createdAt: timestamp, updatedAt: timestamp,
    deletionReport: { type: 'object', description: 'Once deleted: counts of what was removed and when (no PII).' },
  },
};
/** One value per metric: a limit (null: unlimited) or a usage. */
const metricMap = (value: JsonSchema): JsonSchema => ({
  type: 'object',
  required: [...METRICS],
  additionalProperties: false,
  properties: Object.fromEntries(METRICS.map((m) => [m, value])),
});
/** An object whose every listed property is always sent, and nothing else. */
const closed = (properties: Record<string, JsonSchema>): JsonSchema => ({
  type: 'object',
  required: Object.keys(properties),
  additionalProperties: false,
  properties,
});

const tenantRole: JsonSchema = { type: 'string', enum: ['org_admin', 'user', 'readonly'] };
const memberStatus: JsonSchema = { type: 'string', enum: ['active', 'inactive'] };
export const memberSchema: JsonSchema = {
  type: 'object', additionalProperties: false, required: ['userId', 'email', 'role', 'status', 'createdAt'],
  properties: { userId: uuid, email: { type: 'string' }, name: { type: 'string' }, role: tenantRole, status: memberStatus, createdAt: timestamp },
};
/**
 * The Cognito actions of creating a user (UserDirectory.createUser): a retry finds the user it created
 * (get) and brings its role and state back to what was asked. Onboarding and adding a member use them.
 */
const CREATE_USER = ['AdminCreateUser', 'AdminGetUser', 'AdminUpdateUserAttributes', 'AdminEnableUser'] as const satisfies readonly DirectoryAction[];
const exportStatus: JsonSchema = { type: 'string', enum: ['pending', 'ready', 'failed'] };

/**
 * Each route's `response` (its schema is documentation: only the OpenAPI document reads it) is written
 * `globalThis.__TENANT_ROUTE_DOCS__ !== false ? {…} : UNDOCUMENTED`: every route's Lambda bundle defines
 * that flag as false (lib/constructs/input-validators.ts; the OpenAPI route's bundle serves the document
 * built at bundling time), and esbuild then leaves the response schemas out, with the schemas only they
 * use. The condition is written at each site because esbuild folds it there, not through a constant.
 * Everywhere else (the local server, the tests, the synth that builds the document) they are there.
 */
/** A route's response in a bundle without the documentation: nothing reads it there. */
const UNDOCUMENTED: { readonly status: number; readonly schema?: JsonSchema } = { status: 0 };

/** The routes, keyed by a stable id (used for Lambda names, OpenAPI operationId and logs). */
export const routes = withIds({
  health: {
    method: 'GET', path: '/health', handler: 'platform/health', summary: 'Liveness', auth: 'public', roles: [],
    mutating: false, meters: [], usesStorage: false,
    response: globalThis.__TENANT_ROUTE_DOCS__ !== false ? { status: 200, schema: closed({ status: { const: 'ok' } }) } : UNDOCUMENTED,
  },
  openapi: {
    method: 'GET', path: '/openapi.json', handler: 'platform/openapi', summary: 'This API as OpenAPI 3.1', auth: 'public',
    roles: [], mutating: false, meters: [], usesStorage: false, response: globalThis.__TENANT_ROUTE_DOCS__ !== false ? { status: 200, schema: { type: 'object' } } : UNDOCUMENTED,
  },
  listTenants: {
    method: 'GET', path: '/api/tenants', handler: 'platform/list-tenants', summary: 'List tenants with plan and status',
    auth: 'platform', roles: ['superadmin'], mutating: false, meters: [], usesStorage: false, query: listQuery,
    response: globalThis.__TENANT_ROUTE_DOCS__ !== false ? {
      status: 200,
      schema: page(closed({
        id: { type: 'string' }, name: { type: 'string' }, planId: { type: 'string' },
        status: { type: 'string', enum: ['active', 'suspended', 'offboarding', 'deleted'] }, createdAt: timestamp,
      })),
    } : UNDOCUMENTED,
  },
  createTenant: {
    // 409: an id in use or ever used.
    errors: [409],
    idempotent: true,
    method: 'POST', path: '/api/tenants', handler: 'platform/create-tenant',
    summary: 'Onboard a tenant with its data key and first org_admin', auth: 'platform', roles: ['superadmin'],
    mutating: true, audit: { type: 'tenant', id: 'work' }, meters: [], usesStorage: false, usesPii: true,
    // The tenant's data key is generated here, and only here.
    createsDataKeys: true,
    // The first org_admin, as a member is created.
    directory: CREATE_USER,
    body: {
      type: 'object', additionalProperties: false, required: ['id', 'name', 'planId', 'admin'],
      properties: {
        id: tenantIdParam,
        name: displayName,
        planId: planIdSchema,
        admin: {
          type: 'object', additionalProperties: false, required: ['email'],
          properties: { email: emailSchema, name: displayName },
        },
      },
      examples: [{ id: 'initech', name: 'Initech', planId: 'pro', admin: { email: 'ada@initech.example', name: 'Ada' } }],
    },
    response: globalThis.__TENANT_ROUTE_DOCS__ !== false ? {
      status: 201,
      schema: closed({ tenant: tenantSchema, admin: memberSchema }),
    } : UNDOCUMENTED,
  },
  getTenant: {
    method: 'GET', path: '/api/tenants/{tenantId}', handler: 'platform/get-tenant',
    summary: 'A tenant; an offboarded one with its deletion report', auth: 'platform', roles: ['superadmin'],
    mutating: false, meters: [], usesStorage: false, params: { tenantId: tenantIdParam },
    response: globalThis.__TENANT_ROUTE_DOCS__ !== false ? { status: 200, schema: tenantSchema } : UNDOCUMENTED,
  },
  updateTenant: {
    // 409: an offboarding or deleted tenant.
    errors: [409],
    method: 'PATCH', path: '/api/tenants/{tenantId}', handler: 'platform/update-tenant',
    summary: 'Rename a tenant, change its plan, suspend or resume it', auth: 'platform', roles: ['superadmin'],
    mutating: true, audit: { type: 'tenant', id: { param: 'tenantId' } }, meters: [], usesStorage: false,
    params: { tenantId: tenantIdParam },
    body: {
      type: 'object', additionalProperties: false, minProperties: 1,
      properties: { name: displayName, planId: planIdSchema, status: { type: 'string', enum: ['active', 'suspended'] } },
      examples: [{ planId: 'enterprise' }],
    },
    response: globalThis.__TENANT_ROUTE_DOCS__ !== false ? { status: 200, schema: tenantSchema } : UNDOCUMENTED,
  },
  deleteTenant: {
    // 409: a tenant that cannot be offboarded now.
    errors: [409],
    method: 'DELETE', path: '/api/tenants/{tenantId}', handler: 'platform/delete-tenant',
    summary: 'Offboard a tenant (resumable; calling again resumes)', auth: 'platform', roles: ['superadmin'],
    mutating: true, audit: { type: 'tenant', id: { param: 'tenantId' } }, meters: [], usesStorage: false,
    enqueuesJobs: true,
    params: { tenantId: tenantIdParam },
    response: globalThis.__TENANT_ROUTE_DOCS__ !== false ? { status: 202, schema: tenantSchema } : UNDOCUMENTED,
  },
  listDocuments: {
    method: 'GET', path: '/api/{tenantId}/documents', handler: 'documents/list', summary: 'List documents, newest first',
    auth: 'tenant', roles: ['org_admin', 'user', 'readonly'], mutating: false, meters: ['api_requests'], usesStorage: false, oneFlush: true,
    query: listQuery, response: globalThis.__TENANT_ROUTE_DOCS__ !== false ? { status: 200, schema: page(documentSchema) } : UNDOCUMENTED,
  },
  createDocument: {
    idempotent: true,
    method: 'POST', path: '/api/{tenantId}/documents', handler: 'documents/create',
    summary: 'Create a document and get a presigned upload URL', auth: 'tenant', roles: ['org_admin', 'user'],
    mutating: true, audit: { type: 'document', id: 'work' }, meters: ['api_requests', 'documents', 'storage_bytes'],
    usesStorage: true,
    body: {
      type: 'object', additionalProperties: false, required: ['name', 'contentType', 'sizeBytes'],
      properties: {
        // Printable text, not only spaces: it is metadata, never a key.
        name: { type: 'string', minLength: 1, maxLength: 255, pattern: '^(?=[\\s\\S]*\\S)[^\\u0000-\\u001f\\u007f]+$' },
        contentType: { type: 'string', maxLength: MEDIA_TYPE_MAX_LENGTH, pattern: MEDIA_TYPE_PATTERN },
        sizeBytes: { type: 'integer', minimum: 1, maximum: 5368709120 },
      },
      examples: [{ name: 'Q3 report.pdf', contentType: 'application/pdf', sizeBytes: 1024 }],
    },
    response: globalThis.__TENANT_ROUTE_DOCS__ !== false ? {
      status: 201,
      schema: closed({
        document: documentSchema,
        upload: closed({
          url: { type: 'string', format: 'uri' },
          method: { const: 'PUT' },
          headers: {
            ...closed({
              'Content-Type': { type: 'string' },
              'Content-Length': { type: 'string', pattern: '^[1-9][0-9]*$' },
              'If-None-Match': { const: '*' },
            }),
            description: 'Send exactly these headers with the PUT: the signature binds them. If-None-Match: * makes the upload unable to overwrite.',
          },
          expiresAt: timestamp,
        }),
      }),
    } : UNDOCUMENTED,
  },
  getDocument: {
    method: 'GET', path: '/api/{tenantId}/documents/{documentId}', handler: 'documents/get',
    summary: 'Get a document and a presigned download URL', auth: 'tenant', roles: ['org_admin', 'user', 'readonly'],
    mutating: false, meters: ['api_requests'], usesStorage: true, params: { documentId: uuidParam },
    // The document is available but its bytes are missing from storage.
    errors: [409],
    response: globalThis.__TENANT_ROUTE_DOCS__ !== false ? {
      status: 200,
      schema: closed({
        document: documentSchema,
        download: {
          ...closed({ url: { type: 'string', format: 'uri' }, expiresAt: timestamp }),
          type: ['object', 'null'], description: 'null while the upload has not arrived',
        },
      }),
    } : UNDOCUMENTED,
  },
  deleteDocument: {
    method: 'DELETE', path: '/api/{tenantId}/documents/{documentId}', handler: 'documents/delete',
    summary: 'Delete a document and its object (org_admin; user for documents they created)', auth: 'tenant',
    roles: ['org_admin', 'user'], mutating: true, audit: { type: 'document', id: { param: 'documentId' } },
    meters: ['api_requests', 'documents', 'storage_bytes'], usesStorage: true, params: { documentId: uuidParam },
    response: globalThis.__TENANT_ROUTE_DOCS__ !== false ? { status: 204 } : UNDOCUMENTED,
  },
  getBilling: {
    method: 'GET', path: '/api/{tenantId}/billing', handler: 'billing/get', summary: 'Plan, period, usage and estimated charges',
    auth: 'tenant', roles: ['org_admin'], mutating: false, meters: ['api_requests'], usesStorage: false,
    response: globalThis.__TENANT_ROUTE_DOCS__ !== false ? {
      status: 200,
      schema: closed({
        tenantId: { type: 'string' },
        plan: closed({ id: { type: 'string' }, name: { type: 'string' }, limits: metricMap({ type: ['integer', 'null'], minimum: 0 }) }),
        period: closed({ start: timestamp, end: timestamp }),
        usage: metricMap({ type: 'integer', minimum: 0 }),
        monthlyMetrics: { type: 'array', items: { enum: [...METRICS] }, description: 'The metrics counted per month; the others are standing totals.' },
        estimatedCharges: closed({ currency: { type: 'string' }, amount: { type: 'string', pattern: '^[0-9]+\\.[0-9]{2}$' } }),
      }),
    } : UNDOCUMENTED,
  },
  recordUsageEvent: {
    idempotent: true,
    method: 'POST', path: '/api/{tenantId}/usage-events', handler: 'usage/record-event',
    summary: 'Record metered usage, idempotently', auth: 'tenant', roles: ['org_admin', 'user'], mutating: true,
    audit: { type: 'usage_event', id: 'work' }, meters: ['api_requests'], usesStorage: false, errors: [409],
    body: {
      type: 'object', additionalProperties: false, required: ['metric', 'quantity', 'idempotencyKey'],
      properties: {
        metric: { type: 'string', enum: ['ai_tokens'], description: 'Client-reported metrics; requests, documents and storage are metered by the API itself.' },
        quantity: { type: 'integer', minimum: 1, maximum: 1000000000 },
        idempotencyKey: { type: 'string', minLength: 1, maxLength: 255, pattern: '^[!-~]+$', description: 'Printable ASCII without spaces.' },
      },
      examples: [{ metric: 'ai_tokens', quantity: 1200, idempotencyKey: 'completion-7f3a' }],
    },
    response: globalThis.__TENANT_ROUTE_DOCS__ !== false ? {
      status: 202,
      schema: {
        type: 'object', additionalProperties: false, required: ['id', 'metric', 'quantity', 'duplicate'],
        description: 'used and limit are sent when the event was recorded now (duplicate: false).',
        properties: {
          id: uuid, metric: { type: 'string' }, quantity: { type: 'integer' }, duplicate: { type: 'boolean' },
          used: { type: 'integer' }, limit: { type: ['integer', 'null'] },
        },
      },
    } : UNDOCUMENTED,
  },
  listMembers: {
    method: 'GET', path: '/api/{tenantId}/members', handler: 'members/list', summary: 'List members', auth: 'tenant',
    roles: ['org_admin'], mutating: false, meters: ['api_requests'], usesStorage: false, usesPii: true, query: listQuery,
    response: globalThis.__TENANT_ROUTE_DOCS__ !== false ? {
      status: 200,
      schema: page({
        type: 'object',
        required: ['userId', 'email', 'role', 'status'], additionalProperties: false,
        properties: { userId: uuid, email: { type: ['string', 'null'] }, role: { type: 'string' }, status: { type: 'string' } },
      }),
    } : UNDOCUMENTED,
  },
  getMember: {
    method: 'GET', path: '/api/{tenantId}/members/{userId}', handler: 'members/get', summary: 'Get a member', auth: 'tenant',
    roles: ['org_admin'], mutating: false, meters: ['api_requests'], usesStorage: false, usesPii: true, params: { userId: uuidParam },
    response: globalThis.__TENANT_ROUTE_DOCS__ !== false ? { status: 200, schema: memberSchema } : UNDOCUMENTED,
  },
  createMember: {
    // 409: an email already a member.
    errors: [409],
    idempotent: true,
    method: 'POST', path: '/api/{tenantId}/members', handler: 'members/create',
    summary: 'Add a member: a user of this tenant who can sign in', auth: 'tenant', roles: ['org_admin'], mutating: true,
    audit: { type: 'member', id: 'work' }, meters: ['api_requests'], usesStorage: false, usesPii: true,
    directory: CREATE_USER,
    body: {
      type: 'object', additionalProperties: false, required: ['email', 'role'],
      properties: {
        email: { type: 'string', maxLength: EMAIL_MAX_LENGTH, pattern: EMAIL_PATTERN },
        role: tenantRole,
        name: { type: 'string', minLength: 1, maxLength: 200, pattern: '^(?=[\\s\\S]*\\S)[^\\u0000-\\u001f\\u007f]+$' },
      },
      examples: [{ email: 'ada@example.com', role: 'user', name: 'Ada Lovelace' }],
    },
    response: globalThis.__TENANT_ROUTE_DOCS__ !== false ? { status: 201, schema: memberSchema } : UNDOCUMENTED,
  },
  updateMember: {
    // 409: the last active org_admin.
    errors: [409],
    method: 'PATCH', path: '/api/{tenantId}/members/{userId}', handler: 'members/update',
    summary: "Change a member's role or status (at their next request)", auth: 'tenant', roles: ['org_admin'], mutating: true,
    audit: { type: 'member', id: { param: 'userId' } }, meters: ['api_requests'], usesStorage: false, usesPii: true,
    directory: ['AdminUpdateUserAttributes', 'AdminEnableUser', 'AdminDisableUser'],
    params: { userId: uuidParam },
    body: {
      type: 'object', additionalProperties: false, minProperties: 1,
      properties: { role: tenantRole, status: memberStatus },
      examples: [{ role: 'readonly' }],
    },
    response: globalThis.__TENANT_ROUTE_DOCS__ !== false ? { status: 200, schema: memberSchema } : UNDOCUMENTED,
  },
  deleteMember: {
    // 409: the last active org_admin.
    errors: [409],
    method: 'DELETE', path: '/api/{tenantId}/members/{userId}', handler: 'members/delete',
    summary: 'Remove a member: they can no longer sign in, and a token they hold is refused', auth: 'tenant', roles: ['org_admin'],
    mutating: true, audit: { type: 'member', id: { param: 'userId' } }, meters: ['api_requests'], usesStorage: false, usesPii: true,
    // Disabled first, enabled again when the database refuses the removal, deleted once the row is gone.
    directory: ['AdminDisableUser', 'AdminEnableUser', 'AdminDeleteUser'],
    params: { userId: uuidParam }, response: globalThis.__TENANT_ROUTE_DOCS__ !== false ? { status: 204 } : UNDOCUMENTED,
  },
  createExport: {
    idempotent: true,
    method: 'POST', path: '/api/{tenantId}/exports', handler: 'exports/create',
    summary: "Prepare a portability bundle of the tenant's data", auth: 'tenant', roles: ['org_admin'], mutating: true,
    audit: { type: 'export', id: 'work' }, meters: ['api_requests'], usesStorage: false, enqueuesJobs: true,
    response: globalThis.__TENANT_ROUTE_DOCS__ !== false ? {
      status: 202,
      schema: {
        type: 'object', additionalProperties: false, required: ['export'],
        properties: { export: { type: 'object', additionalProperties: false, required: ['id', 'status'], properties: { id: uuid, status: exportStatus } } },
      },
    } : UNDOCUMENTED,
  },
  getExport: {
    method: 'GET', path: '/api/{tenantId}/exports/{exportId}', handler: 'exports/get',
    summary: 'An export and, once ready, a presigned download of its bundle', auth: 'tenant', roles: ['org_admin'],
    mutating: false, meters: ['api_requests'], usesStorage: true, params: { exportId: uuidParam },
    response: globalThis.__TENANT_ROUTE_DOCS__ !== false ? {
      status: 200,
      schema: {
        type: 'object', additionalProperties: false, required: ['export'],
        properties: {
          export: {
            type: 'object', additionalProperties: false, required: ['id', 'status', 'download'],
            properties: {
              id: uuid, status: exportStatus,
              download: {
                type: ['object', 'null'], description: 'null until the bundle is ready', additionalProperties: false,
                required: ['url', 'expiresAt'], properties: { url: { type: 'string' }, expiresAt: timestamp },
              },
            },
          },
        },
      },
    } : UNDOCUMENTED,
  },
  listAuditEvents: {
    method: 'GET', path: '/api/{tenantId}/audit-events', handler: 'audit/list', summary: 'List audit events, newest first',
    auth: 'tenant', roles: ['org_admin'], mutating: false, meters: ['api_requests'], usesStorage: false, oneFlush: true, query: listQuery,
    response: globalThis.__TENANT_ROUTE_DOCS__ !== false ? {
      status: 200,
      schema: page({
        type: 'object',
        required: ['id', 'occurredAt', 'actorUserId', 'actorRole', 'action', 'resourceType', 'resourceId', 'requestId', 'outcome', 'seq', 'prevHash', 'hash'],
        properties: {
          id: uuid, occurredAt: timestamp, actorUserId: uuid, actorRole: { type: 'string' }, action: { type: 'string' },
          resourceType: { type: 'string' }, resourceId: { type: ['string', 'null'] }, requestId: { type: 'string' },
          outcome: { type: 'string', enum: ['success', 'denied'] },
          // The event's link in the tenant's hash chain (SHA-256, hex); null until the sealer has chained it.
          seq: { type: ['integer', 'null'], minimum: 1 }, prevHash: { type: ['string', 'null'] }, hash: { type: ['string', 'null'] },
        },
        additionalProperties: false,
      }),
    } : UNDOCUMENTED,
  },
} as const satisfies Record<string, RouteSpec>);

export type RouteId = keyof typeof routes;
export type AnyRoute = (typeof routes)[RouteId];

/** The manifest as a list, with ids. */
export const routeList: ReadonlyArray<IdentifiedRoute<RouteSpec, RouteId>> = Object.values(routes);
