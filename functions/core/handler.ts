/**
 * The one wrapper every route goes through. In order: request id → token verified again
 * (aws-jwt-verify) → path tenant must equal the token's tenant (403) → role from the manifest (403) →
 * input parsed and validated against the manifest's schemas → ONE transaction holding: the tenant context, the member/tenant status check, the
 * route's work and, for mutating routes (and every platform-operator use of a tenant route), the audit
 * event → JSON or problem+json. Logs, trace annotations and metrics are added here once.
 */
import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { authenticator as containerAuthenticator, type Authenticator, type Caller } from './auth';
import { config } from './config';
import { assertOperator, withControl } from './control-plane';
import { withCors } from './cors';
import { DeadlineExceededError, withinDeadline, type Deadline } from './deadline';
import { controlSql, sql as containerSql, withTenant, type RequestContext, type Sql, type Tx } from './db';
import { AppError, ForbiddenError, NotFoundError } from './errors';
import { header, parseJsonBody, problem, toResult, type Reply } from './http';
import { meterRequest, quotaHeaders, type MeterReading } from './metering';
import { logger, metrics, MetricUnit, tracer } from './observability';
import { auditResource } from './audit';
import type { IdentifiedRoute, LambdaHandler, RouteSpec } from './route-spec';
import { forTenant as piiForTenant, type Pii, type TenantPii } from './pii';
import type { TenantStorage, TenantStorageProvider } from './storage';
import { isTenantId } from './tenant';
import { validateInput } from './validate';

/** What a route's work receives: who, for which tenant, inside which transaction, with which input. */
export interface RouteContext<Body = Readonly<Record<string, unknown>>> extends RequestContext {
  readonly tx: Tx;
  readonly routeId: string;
  /** Path parameters other than tenantId, URL-decoded by API Gateway. */
  readonly params: Readonly<Record<string, string>>;
  readonly query: Readonly<Record<string, string | undefined>>;
  /**
   * The JSON body for routes that declare one, already valid against the manifest's schema (`{}`
   * otherwise); the route types it with an interface that its schema's example is checked against.
   */
  readonly body: Body;
  /**
   * Reports what only the work knows about the audit event: the resource id when the manifest's
   * `audit.id` is `'work'` (e.g. a created row), and any detail. The resource type is the manifest's.
   */
  audit(resource: { id?: string; detail?: Record<string, unknown> }): void;
  /**
   * Runs `task` once the transaction has committed, before the answer is sent (e.g. waking the job
   * runner for a job row this request wrote). Never runs when the transaction rolls back. A task's
   * failure never changes the answer (the task logs it): what it does must be recoverable from the
   * committed rows.
   */
  afterCommit(task: () => Promise<void>): void;
}

/**
 * A platform route's work: no tenant and no transaction of the wrapper's. It gets the control-plane
 * client (app_control, never app_runtime) and opens its own control transactions, each of which checks
 * that the caller is an active platform operator (functions/lifecycle/control.ts `assertOperator`) and
 * writes the audit event in the tenant it touches.
 */
export interface PlatformRouteContext<Body = Readonly<Record<string, unknown>>> extends Omit<RouteContext<Body>, 'tenantId' | 'audit' | 'tx' | 'afterCommit'> {
  readonly role: 'superadmin';
  /** The control-plane database client. */
  readonly control: Sql;
}

/** A route's work context with `ctx.storage`: its manifest entry says `usesStorage: true`. */
export interface WithStorage {
  /** The tenant's documents in S3, bound to this request's tenant and user (STS-scoped credentials). */
  readonly storage: TenantStorage;
}
/** A route's work context with `ctx.pii`: its manifest entry says `usesPii: true`. */
export interface WithPii {
  /** This request's tenant's PII keys. */
  readonly pii: TenantPii;
}
/** The capabilities the manifest entry `S` grants its work. */
export type CapabilitiesOf<S extends RouteSpec> = (S['usesStorage'] extends true ? WithStorage : unknown) &
  (S['usesPii'] extends true ? WithPii : unknown);

/**
 * What the wrapper uses, injectable by tests. `storage` and `pii` are passed by the handlers of routes
 * that use them (`route(routes.x, work, { storage })`), so that no other bundle carries S3 or KMS.
 */
export interface HandlerDependencies {
  readonly sql: () => Sql;
  /** The control-plane client of platform routes (app_control). @default the container's, from CONTROL_DATABASE_URL / CONTROL_DB_USER */
  readonly control?: () => Sql;
  readonly authenticator: () => Authenticator;
  readonly storage?: () => TenantStorageProvider;
  readonly pii?: () => Pii;
  /** Browser origins whose answers carry CORS headers (functions/core/cors.ts). @default CORS_ORIGINS */
  readonly corsOrigins?: () => readonly string[];
  /** Milliseconds within which every request is answered (core/deadline.ts). @default REQUEST_DEADLINE_MS */
  readonly deadlineMs?: () => number;
}

const defaults: HandlerDependencies = {
  sql: containerSql,
  control: controlSql,
  authenticator: containerAuthenticator,
  corsOrigins: () => config().cors.allowedOrigins,
  deadlineMs: () => config().deadlines.requestMs,
};

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

function requestIdOf(event: APIGatewayProxyEvent): string {
  const id = event.requestContext?.requestId;
  return typeof id === 'string' && REQUEST_ID.test(id) ? id : randomUUID();
}

/**
 * Runs the route's work between the status guard and, for metered routes, the request meter. The guard
 * is pipelined right behind the tenant context (no round trip of its own); if it raises, the transaction
 * is aborted, no work can run, and its error wins over the work's (which then only says "transaction
 * aborted"). The meter runs last, just before COMMIT: it locks the tenant's counter row, and no S3, STS,
 * KMS or Cognito call of the work may wait while that lock is held (a stalled dependency would stall
 * every request of the tenant). Over a limit it still raises and rolls the work back. Past the request's
 * deadline the caller has had its 503: the transaction rolls back rather than commit behind its back.
 * Errors leave raw: `withTenant` maps them.
 */
async function guarded<T>(tx: Tx, metered: boolean, deadline: Deadline, work: () => Promise<T>): Promise<{ result: T; meter?: MeterReading }> {
  const guard = tx`select app.assert_request_allowed()`.execute();
  guard.catch(() => undefined);
  let result: T;
  try {
    result = await work();
  } catch (error) {
    await guard;
    throw error;
  }
  await guard;
  const meter = metered ? await meterRequest(tx) : undefined;
  if (deadline.expired) throw new DeadlineExceededError();
  return { result, meter };
}

/** The request's input, validated against the manifest before any transaction (core/validate.ts). */
function inputOf(routeId: string, spec: RouteSpec, event: APIGatewayProxyEvent) {
  const params: Record<string, string> = {};
  for (const [key, value] of Object.entries(event.pathParameters ?? {})) {
    // A tenant route's tenantId is its scope (checked against the token); a platform route's is input.
    if ((key !== 'tenantId' || spec.auth === 'platform') && value !== undefined) params[key] = value;
  }
  const query: Record<string, string | undefined> = { ...(event.queryStringParameters ?? {}) };
  const body = spec.body ? parseJsonBody(event) : {};
  // The query is checked on a copy: the paging helper parses `limit` and `cursor` from the strings sent.
  validateInput(routeId, spec, { params, query: { ...query }, body });
  return { params, query, body };
}

/** The tenant this request acts in, after checking the path against the token. */
function tenantOf(event: APIGatewayProxyEvent, caller: Caller): string {
  const pathTenant = event.pathParameters?.tenantId;
  if (!isTenantId(pathTenant)) throw new NotFoundError('Not found.');
  if (caller.role !== 'superadmin' && caller.tenantId !== pathTenant) {
    throw new ForbiddenError('The token is not valid for this tenant.');
  }
  return pathTenant;
}

async function serve(
  routeId: string,
  spec: RouteSpec,
  event: APIGatewayProxyEvent,
  requestId: string,
  work: (ctx: never) => Promise<Reply>,
  deps: HandlerDependencies,
  deadline: Deadline,
): Promise<Reply> {
  if (spec.auth === 'public') return (work as (ctx: { requestId: string; event: APIGatewayProxyEvent }) => Promise<Reply>)({ requestId, event });

  const caller = await deps.authenticator().authenticate(header(event, 'authorization'));
  logger.appendKeys({ user_id: caller.userId, role: caller.role });
  if (!(spec.roles as readonly string[]).includes(caller.role)) {
    throw new ForbiddenError('Your role may not use this route.');
  }

  if (spec.auth === 'platform') {
    const input = inputOf(routeId, spec, event);
    const control = (deps.control ?? controlSql)();
    // Fail closed for every platform route, whatever its work remembers: the token's claim is not enough,
    // the caller must be an active platform operator (a row only the owner-run command writes).
    const actor = { userId: caller.userId, role: caller.role, requestId };
    await withControl(control, actor, (tx) => assertOperator(tx, actor));
    return (work as (c: PlatformRouteContext) => Promise<Reply>)({ userId: caller.userId, role: 'superadmin', requestId, ...input, control, routeId });
  }

  const tenantId = tenantOf(event, caller);
  logger.appendKeys({ tenant_id: tenantId });
  tracer.putAnnotation('tenant_id', tenantId);
  const input = inputOf(routeId, spec, event);
  const context: RequestContext = { tenantId, userId: caller.userId, role: caller.role, requestId };
  // Every platform-operator use of a tenant route leaves a trace in that tenant.
  const audited = spec.mutating || caller.role === 'superadmin';
  let reported: { id?: string; detail?: Record<string, unknown> } = {};
  const committed: (() => Promise<void>)[] = [];

  // Bound to this tenant and user before the transaction; building them makes no AWS call.
  const capabilities = {
    ...(spec.usesStorage ? { storage: deps.storage!().forTenant(tenantId, caller.userId) } : {}),
    ...(spec.usesPii ? { pii: piiForTenant(deps.pii!(), tenantId) } : {}),
  };
  const { result, meter } = await withTenant(deps.sql(), context, (tx) =>
    guarded(tx, (spec.meters as readonly string[]).includes('api_requests'), deadline, async () => {
      const reply = await (work as (c: RouteContext) => Promise<Reply>)({
        ...context,
        ...capabilities,
        ...input,
        tx,
        routeId,
        audit: (r) => (reported = r),
        afterCommit: (task) => committed.push(task),
      });
      if (audited) {
        const resource = auditResource(routeId, spec, input.params, tenantId, reported);
        await tx`
          insert into app.audit_events
            (tenant_id, actor_user_id, actor_role, action, resource_type, resource_id, request_id, detail)
          values
            (${tenantId}, ${caller.userId}, ${caller.role}, ${routeId}, ${resource.type}, ${resource.id ?? null},
             ${requestId}, ${tx.json((reported.detail ?? {}) as never)})`;
      }
      return reply;
    }),
  );
  await Promise.allSettled(committed.map((task) => task()));
  return meter ? { ...result, headers: { ...quotaHeaders('api_requests', meter), ...result.headers } } : result;
}

function record(routeId: string, status: number, started: number, error?: unknown): void {
  const durationMs = Math.round((performance.now() - started) * 1000) / 1000;
  metrics.addDimension('route', routeId);
  metrics.addMetric('Requests', MetricUnit.Count, 1);
  metrics.addMetric('Latency', MetricUnit.Milliseconds, durationMs);
  if (status >= 500) metrics.addMetric('ServerErrors', MetricUnit.Count, 1);
  if (status === 429) metrics.addMetric('QuotaRejections', MetricUnit.Count, 1);
  metrics.publishStoredMetrics();
  if (status >= 500) logger.error('request failed', { status, duration_ms: durationMs, error: error as Error });
  else if (error instanceof AppError) logger.warn('request refused', { status, duration_ms: durationMs, reason: error.detail });
  else logger.info('request served', { status, duration_ms: durationMs });
}

/** The work function a route of this kind receives its context in. */
export type WorkFor<S extends RouteSpec, Body = Readonly<Record<string, unknown>>> = S['auth'] extends 'public'
  ? (ctx: { requestId: string; event: APIGatewayProxyEvent }) => Promise<Reply>
  : S['auth'] extends 'platform'
    ? (ctx: PlatformRouteContext<Body>) => Promise<Reply>
    : (ctx: RouteContext<Body> & CapabilitiesOf<S>) => Promise<Reply>;

/**
 * Wraps a route's work into a Lambda handler for the API Gateway REST proxy integration. The handler
 * passes its manifest entry (`route(routes.listDocuments, work)`): core never imports the manifest.
 * Public routes receive `{ requestId, event }`; platform routes a `PlatformRouteContext`; tenant routes
 * a `RouteContext`.
 */
export function route<S extends IdentifiedRoute, Body = Readonly<Record<string, unknown>>>(spec: S, work: WorkFor<S, Body>, deps: Partial<HandlerDependencies> = {}): LambdaHandler {
  return wrap(spec.id, spec, work as (ctx: never) => Promise<Reply>, deps);
}

/**
 * The wrapper for any route spec under any id. `route()` is what handlers use; this exists so that tests
 * can wrap a spec that is not in the manifest (e.g. a tenant route opened to `superadmin`).
 */
export function wrap(
  routeId: string,
  spec: RouteSpec,
  work: (ctx: never) => Promise<Reply>,
  deps: Partial<HandlerDependencies> = {},
): LambdaHandler {
  const dependencies: HandlerDependencies = { ...defaults, ...deps };
  // Fails at cold start, not at the first request: a route that uses storage or PII must be given it.
  if (spec.usesStorage && !dependencies.storage) throw new Error(`route ${routeId} uses storage but was given none`);
  if (spec.usesPii && !dependencies.pii) throw new Error(`route ${routeId} uses PII keys but was given none`);
  return async (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => {
    const started = performance.now();
    const requestId = requestIdOf(event);
    logger.appendKeys({ request_id: requestId, route: `${spec.method} ${spec.path}`, action_type: routeId });
    tracer.putAnnotation('route', routeId);
    // Errors too carry the CORS headers: a browser app must be able to read why it was refused.
    const cors = (result: APIGatewayProxyResult) => withCors(result, header(event, 'origin'), (dependencies.corsOrigins ?? defaults.corsOrigins!)());
    try {
      const reply = await withinDeadline((dependencies.deadlineMs ?? defaults.deadlineMs!)(), (deadline) =>
        serve(routeId, spec, event, requestId, work, dependencies, deadline),
      );
      record(routeId, reply.status, started);
      return cors(toResult(reply, requestId));
    } catch (error) {
      const result = problem(error, requestId);
      record(routeId, result.statusCode, started, error);
      return cors(result);
    } finally {
      logger.removeKeys(['request_id', 'route', 'action_type', 'tenant_id', 'user_id', 'role']);
    }
  };
}
