/**
 * The shape of a route manifest entry. It lives in core so that the wrapper, metering and the CDK
 * constructs can speak about routes without importing the manifest (`functions/routes.ts`): the
 * manifest imports core, handlers import the manifest, and core imports neither.
 */
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import type { Metric } from './metrics';
import type { Role } from './tenant';

/** Cognito admin actions a route may be granted on the project's user pool (functions/core/cognito.ts). */
export type DirectoryAction =
  | 'AdminCreateUser'
  | 'AdminGetUser'
  | 'AdminUpdateUserAttributes'
  | 'AdminEnableUser'
  | 'AdminDisableUser'
  | 'AdminDeleteUser';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** A JSON Schema (draft 2020-12 subset) used for validation, OpenAPI and API Gateway request models. */
export type JsonSchema = { readonly [key: string]: unknown };

/** What every handler module exports as `handler`: an API Gateway REST proxy Lambda handler. */
export type LambdaHandler = (event: APIGatewayProxyEvent, context?: Context) => Promise<APIGatewayProxyResult>;

/**
 * What the audit event of a mutating route is about. `type` is recorded as `resource_type`; the id is
 * either a path parameter (known before the work runs) or reported by the work with `ctx.audit({ id })`
 * (known only after it, e.g. a created row's id).
 */
export interface AuditSpec {
  readonly type: string;
  readonly id: { readonly param: string } | 'work';
}

interface RouteBase {
  readonly method: HttpMethod;
  /** API Gateway path syntax: `/api/{tenantId}/documents/{documentId}`. */
  readonly path: string;
  /** Handler file under functions/, without extension; it exports `handler`. */
  readonly handler: string;
  readonly summary: string;
  /** Changes state: the request writes an audit event in the same transaction. */
  readonly mutating: boolean;
  /** The audit resource; required for mutating routes (the wrapper refuses to commit one without it). */
  readonly audit?: AuditSpec;
  /** Usage metrics the route moves (metered inside the request's transaction). */
  readonly meters: readonly Metric[];
  /** The route reaches S3 through STS-scoped tenant credentials: the wrapper provides `ctx.storage`. */
  readonly usesStorage: boolean;
  /** The route unwraps tenant PII data keys with KMS: the wrapper provides `ctx.pii`. */
  readonly usesPii?: boolean;
  /**
   * The route also creates tenant data keys (KMS `GenerateDataKey`: onboarding). Other PII routes only
   * unwrap keys (`kms:Decrypt`). @default false
   */
  readonly createsDataKeys?: boolean;
  /**
   * The route creates a job (app.jobs) and sends its id to the job queue after the commit
   * (functions/core/job-queue.ts); its function may send to that queue and nothing else of it. @default false
   */
  readonly enqueuesJobs?: boolean;
  /**
   * The Cognito admin actions the route makes on this user pool (member management); its function is
   * granted exactly these, on that pool only. @default none
   */
  readonly directory?: readonly DirectoryAction[];
  /**
   * The route creates something and takes an `Idempotency-Key` header (core/idempotency.ts): the same key
   * and request replay the first answer; another request with it → 409; a malformed key → 400. A tenant
   * route's answer is stored by the wrapper in the request's transaction; a platform route's work must
   * store it in its last transaction with `ctx.idempotency.remember`. @default false
   */
  readonly idempotent?: boolean;
  /**
   * The work is a read that sends every statement before it awaits any answer (one query, or several
   * under one `Promise.all`), and after the answers only shapes them (no call that can fail): the wrapper
   * queues the request meter and COMMIT right behind its statements, so the request is one round trip to
   * the database (core/db.ts `inTransaction`). Checked at runtime: a statement the work sends later is
   * refused (500) and never runs outside the transaction. Ignored for requests that write an audit row or
   * carry an Idempotency-Key. @default false
   */
  readonly oneFlush?: boolean;
  /** JSON body schema, when the route takes a body; its first `examples` entry must be a valid body. */
  readonly body?: JsonSchema;
  /** Query parameters, by name (string values as sent; `integer` schemas are converted). */
  readonly query?: { readonly [name: string]: JsonSchema };
  /**
   * Path parameters other than a tenant route's `tenantId` (a platform route lists its `tenantId` too:
   * it is input there, not the request's scope), by name; every `{name}` of `path` must be listed.
   */
  readonly params?: { readonly [name: string]: JsonSchema };
  /** Success status and body schema. */
  readonly response: { readonly status: number; readonly schema?: JsonSchema };
  /**
   * Error statuses the route's own work can answer beyond those its other fields imply (body → 400,
   * 413, 415; query → 400; authenticated → 401, 403, 503; tenant or path parameters → 404; meters →
   * 429), e.g. `[409]` for a conflict. The OpenAPI document lists them; nothing else reads them.
   */
  readonly errors?: readonly ErrorStatus[];
}

/** The error statuses a route may declare in `errors`. */
export type ErrorStatus = 400 | 403 | 404 | 409 | 413 | 415 | 429 | 503;

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

/** A manifest entry with its stable id (Lambda name, OpenAPI operationId, audit action, logs). */
export type IdentifiedRoute<S extends RouteSpec = RouteSpec, Id extends string = string> = S & { readonly id: Id };

/** Adds each entry's key as its `id`, so that a handler passes one value (`routes.x`) to the wrapper. */
export function withIds<const T extends Record<string, RouteSpec>>(specs: T): { readonly [K in keyof T & string]: T[K] & { readonly id: K } } {
  return Object.fromEntries(Object.entries(specs).map(([id, spec]) => [id, { ...spec, id }])) as never;
}
