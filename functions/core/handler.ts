/**
 * The one wrapper every route goes through. In order: request id → token verified again
 * (aws-jwt-verify) → path tenant must equal the token's tenant (403) → role from the manifest (403) →
 * input parsed and validated against the manifest's schemas → ONE transaction holding: the tenant context, the member/tenant status check, the
 * route's work and, for mutating routes (and every platform-operator use of a tenant route), the audit
 * event → JSON or problem+json. Logs, trace annotations and metrics are added here once.
 */
import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { monotonicMs } from './clock';
import { authenticator as containerAuthenticator, type Authenticator, type Caller } from './auth';
import { config } from './config';
import { assertOperator, withControl } from './control-plane';
import { withCors } from './cors';
import { DeadlineExceededError, withinDeadline, type Deadline } from './deadline';
import { controlSql, sql as containerSql, withTenant, type RequestContext, type Sql, type TransactionEnd, type Tx } from './db';
import { rateLimitedError } from './db-errors';
import { ConflictError, ForbiddenError, NotFoundError, QuotaExceededError } from './errors';
import type { keyedRequest, KeyedRequest } from './idempotency';
import { header, headerValues, parseJsonBody, problem, toResult, type Reply } from './http';
import { meterRequest, quotaHeaders, type MeterReading } from './metering';
import { inRequest, log, traced, type Span } from './observability';
import { correlationIdOf, recordRequest, type RequestFacts } from './request-log';
import { auditResource } from './audit';
import type { IdentifiedRoute, LambdaHandler, RouteSpec } from './route-spec';
import { forTenant as piiForTenant, type Pii, type TenantPii } from './pii';
import type { TenantStorage, TenantStorageProvider } from './storage';
import { processAdmission, type Admitted, type RateAdmission } from './rate-admission';
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
  /**
   * Set when the route is `idempotent` and the request carries an `Idempotency-Key`: the work stores its
   * answer with it in the control transaction that completes its work (the key then exists exactly when
   * the work is done). `keys`: the created tenant's, when the answer carries PII (stored sealed).
   */
  readonly idempotency?: Pick<KeyedRequest, 'remember'>;
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
  /**
   * Idempotency-Key handling (core/idempotency.ts), passed by the handlers of `idempotent` routes. A
   * wrapper built without it refuses every request that carries the header rather than ignore it.
   */
  readonly idempotency?: () => typeof keyedRequest;
  /** The process's copy of rate-limited tenants' buckets (core/rate-admission.ts). @default one per process */
  readonly admission?: () => RateAdmission;
}

const defaults: HandlerDependencies = {
  sql: containerSql,
  control: controlSql,
  authenticator: containerAuthenticator,
  corsOrigins: () => config().cors.allowedOrigins,
  deadlineMs: () => config().deadlines.requestMs,
  admission: () => processAdmission,
};

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

function requestIdOf(event: APIGatewayProxyEvent): string {
  const id = event.requestContext?.requestId;
  return typeof id === 'string' && REQUEST_ID.test(id) ? id : randomUUID();
}

/**
 * The status guard (`app.assert_request_allowed()`: an active member of an active tenant), sent at once
 * on the transaction's connection, right behind the tenant context: no round trip of its own. It answers
 * with the tenant's plan (the metrics' `plan` dimension), known from here on even when the work or the
 * meter then refuses the request. If it raises, the transaction is aborted and nothing after it can run;
 * whoever awaits it gets its error.
 */
function requestGuard(tx: Tx, facts: RequestFacts): Promise<void> {
  const guard = tx<{ plan: string | null }[]>`select app.assert_request_allowed() as plan`
    .execute()
    .then(([row]) => {
      if (row?.plan) facts.plan = row.plan;
    });
  guard.catch(() => undefined);
  return guard;
}

/**
 * Runs the route's work behind the status guard ({@link requestGuard}, already sent) and, for metered
 * routes, before the request meter. The guard's error wins over the work's (which then only says
 * "transaction aborted"). The meter runs last, just before COMMIT: it locks the tenant's counter row,
 * and no S3, STS, KMS or Cognito call of the work may wait while that lock is held (a stalled dependency
 * would stall every request of the tenant). Over a limit it still raises and rolls the work back. Past
 * the request's deadline the caller has had its 503: the transaction rolls back rather than commit
 * behind its back. Errors leave raw: `withTenant` maps them.
 *
 * Round trips (core/db.ts `inTransaction`): the work's closing statements (`closing`: the audit row),
 * the meter and COMMIT leave in one flush after the work. A `oneFlush` route (its work sends every
 * statement before it awaits any answer) has the meter and COMMIT queued right behind its statements
 * instead: guard, work, meter and COMMIT are one round trip. A keyed request stores its answer (which
 * carries the meter's quota headers) in a flush of its own, with COMMIT.
 */
async function guarded<T>(
  tx: Tx,
  end: TransactionEnd,
  options: { metered: boolean; oneFlush: boolean; deadline: Deadline; guard: Promise<void> },
  work: () => Promise<T>,
  closing?: () => Promise<void>,
  finish?: (out: { result: T; meter?: MeterReading }) => Promise<void>,
): Promise<{ result: T; meter?: MeterReading }> {
  const { metered, deadline, guard } = options;
  let meter: Promise<MeterReading> | undefined;
  let closed: Promise<void> | undefined;
  // The work's error, once it threw: a COMMIT queued after it would count a failed request.
  let failed: { error: unknown } | undefined;
  // Run as COMMIT is queued (a throw rolls back instead): the work's failure, the deadline, then the last
  // statements.
  const last = (statements: () => void) => () => {
    if (failed) throw failed.error;
    if (deadline.expired) throw new DeadlineExceededError();
    statements();
  };
  const meterLast = () => {
    closed = closing?.();
    closed?.catch(() => undefined);
    meter = metered ? meterRequest(tx) : undefined;
    meter?.catch(() => undefined);
  };
  const oneFlush = options.oneFlush ? end.commitAfterBurst(last(meterLast)) : undefined;
  let result: T;
  try {
    result = await work();
  } catch (error) {
    failed = { error };
    await guard;
    throw error;
  }
  await guard;
  if (oneFlush) await oneFlush;
  else if (finish) meterLast();
  else await end.commitAfterBurst(last(meterLast));
  await closed;
  const reading = await meter;
  if (finish) {
    let stored: Promise<void> | undefined;
    await end.commitAfterBurst(last(() => (stored = finish({ result, meter: reading }))));
    stored?.catch(() => undefined);
    await stored;
  }
  return { result, meter: reading };
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
  facts: RequestFacts,
  deadline: Deadline,
): Promise<Reply> {
  if (spec.auth === 'public') return (work as (ctx: { requestId: string; event: APIGatewayProxyEvent }) => Promise<Reply>)({ requestId, event });

  const caller = await deps.authenticator().authenticate(header(event, 'authorization'));
  facts.note({ user_id: caller.userId, role: caller.role });
  if (!(spec.roles as readonly string[]).includes(caller.role)) {
    throw new ForbiddenError('Your role may not use this route.');
  }

  if (spec.auth === 'platform') {
    const input = inputOf(routeId, spec, event);
    const control = (deps.control ?? controlSql)();
    // Fail closed for every platform route, whatever its work remembers: the token's claim is not enough,
    // the caller must be an active platform operator (a row only the owner-run command writes).
    const actor = { userId: caller.userId, role: caller.role, requestId };
    const idempotency = keyed(spec, routeId, event, deps, { callerId: caller.userId, body: input.body, operatorId: caller.userId });
    const replay = await withControl(
      control,
      actor,
      async (tx) => {
        await assertOperator(tx, actor);
        return idempotency?.claim(tx);
      },
      { signal: deadline.signal },
    );
    if (replay) return replay;
    try {
      return await (work as (c: PlatformRouteContext) => Promise<Reply>)({ userId: caller.userId, role: 'superadmin', requestId, ...input, control, routeId, idempotency });
    } catch (error) {
      // A concurrent request with the same key may have done this very work meanwhile: its answer, then.
      const again = idempotency && error instanceof ConflictError && (await withControl(control, actor, (tx) => idempotency.committed(tx), { signal: deadline.signal }));
      if (again) return again;
      throw error;
    }
  }

  const tenantId = tenantOf(event, caller);
  facts.note({ tenant_id: tenantId });
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
  const idem = keyed(spec, routeId, event, deps, { callerId: caller.userId, body: input.body, tenantId });
  const metered = (spec.meters as readonly string[]).includes('api_requests');
  // A tenant the database has just refused for its rate is refused here while its bucket is empty, with
  // the same 429, before taking a connection. Not a keyed create: its replay comes before the meter.
  const admitted = metered && !idem ? (deps.admission ?? defaults.admission!)().admit(tenantId) : undefined;
  if (admitted && 'refused' in admitted) throw rateLimitedError(admitted.refused);
  // One round trip for a read that says so (the manifest's `oneFlush`), unless the request writes an
  // audit row or carries a key: those go the general way.
  const oneFlush = spec.oneFlush === true && !audited && !idem;
  const outcome = await toldTo(admitted, (out) => !('replay' in out) && out.meter !== undefined, () => withTenant(
    deps.sql(),
    context,
    async (tx, end) => {
      const guard = requestGuard(tx, facts);
      if (idem) {
        // Behind the guard: a caller who may not act here learns nothing of the tenant's keys. A replay
        // changes nothing: no work, no meter, no audit event.
        const [, replay] = await Promise.all([guard, idem.claim(tx)]);
        if (replay) return { replay };
      }
      // The answer is stored after the meter (its quota headers are part of it), before COMMIT.
      const store = await idem?.recorder(tx);
      const remember = store && (({ result, meter }: { result: Reply; meter?: MeterReading }) => store(withQuota(result, meter)));
      const routeWork = () =>
        (work as (c: RouteContext) => Promise<Reply>)({
          ...context,
          ...capabilities,
          ...input,
          tx,
          routeId,
          audit: (r) => (reported = r),
          afterCommit: (task) => committed.push(task),
        });
      // The audit row goes with the meter and COMMIT, once the work has reported what it is about.
      const audit = audited
        ? async () => {
            const resource = auditResource(routeId, spec, input.params, tenantId, reported);
            await tx`
              insert into app.audit_events
                (tenant_id, actor_user_id, actor_role, action, resource_type, resource_id, request_id, correlation_id, detail)
              values
                (${tenantId}, ${caller.userId}, ${caller.role}, ${routeId}, ${resource.type}, ${resource.id ?? null},
                 ${requestId}, ${facts.correlationId}, ${tx.json((reported.detail ?? {}) as never)})`;
          }
        : undefined;
      return guarded(tx, end, { metered, oneFlush, deadline, guard }, routeWork, audit, remember);
    },
    { signal: deadline.signal },
  ));
  if ('replay' in outcome) return outcome.replay;
  // After the commit only (a replay ran no work and has none): e.g. the job id to the queue.
  await Promise.allSettled(committed.map((task) => task()));
  return withQuota(outcome.result, outcome.meter);
}

/**
 * Runs the request's transaction and tells the rate admission (core/rate-admission.ts) how it ended,
 * whatever throws, including before the transaction starts (getting the client: configuration).
 */
async function toldTo<T>(admitted: Admitted | undefined, counted: (out: T) => boolean, run: () => Promise<T>): Promise<T> {
  try {
    const out = await run();
    admitted?.done({ counted: counted(out) });
    return out;
  } catch (error) {
    admitted?.done({ counted: false, rate: error instanceof QuotaExceededError ? error.rate : undefined });
    throw error;
  }
}

/** The answer with the request meter's quota headers. */
function withQuota(reply: Reply, meter: MeterReading | undefined): Reply {
  return meter ? { ...reply, headers: { ...quotaHeaders('api_requests', meter), ...reply.headers } } : reply;
}

/**
 * The request's Idempotency-Key (validated: 400) bound to its scope, when the route is `idempotent` and
 * the request carries one.
 */
function keyed(
  spec: RouteSpec,
  routeId: string,
  event: APIGatewayProxyEvent,
  deps: HandlerDependencies,
  request: { callerId: string; body: unknown; tenantId?: string; operatorId?: string },
): KeyedRequest | undefined {
  if (!spec.idempotent) return undefined;
  // Fail closed: a wrapper built without the capability never runs a keyed create without its key.
  if (!deps.idempotency) {
    if (headerValues(event, 'idempotency-key').length > 0) throw new Error(`route ${routeId} was given no idempotency`);
    return undefined;
  }
  return deps.idempotency()({ spec, routeId, event, pii: deps.pii, ...request });
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
  return async (event: APIGatewayProxyEvent, context?: Context): Promise<APIGatewayProxyResult> => {
    const started = monotonicMs();
    const requestId = requestIdOf(event);
    const correlationId = correlationIdOf(event, requestId);
    const routeKey = `${spec.method} ${spec.path}`;
    // --- observability: the request's own logger (keys, Lambda context), its trace subsegment ---
    const keys = { correlation_id: correlationId, request_id: requestId, route: routeKey, action_type: routeId };
    return inRequest(keys, context, (_log, coldStart) =>
      traced(`## ${routeId}`, async (span: Span) => {
        span.annotate('route', routeId);
        span.annotate('ColdStart', coldStart);
        const facts: RequestFacts = {
          routeId,
          correlationId,
          started,
          span,
          note(k) {
            if (k.tenant_id !== undefined) this.tenantId = k.tenant_id;
            log().appendKeys(k);
            for (const [key, value] of Object.entries(k)) if (key !== 'user_id') span.annotate(key, value);
          },
        };
        // Errors too carry the CORS headers: a browser app must be able to read why it was refused.
        const cors = (result: APIGatewayProxyResult) => {
          const answered = withCors(result, header(event, 'origin'), (dependencies.corsOrigins ?? defaults.corsOrigins!)());
          return { ...answered, headers: { ...answered.headers, 'x-correlation-id': correlationId } };
        };
        try {
          const reply = await withinDeadline((dependencies.deadlineMs ?? defaults.deadlineMs!)(), (deadline) =>
            serve(routeId, spec, event, requestId, work, dependencies, facts, deadline),
          );
          recordRequest(facts, reply.status);
          return cors(toResult(reply, requestId));
        } catch (error) {
          const result = problem(error, requestId);
          recordRequest(facts, result.statusCode, error);
          return cors(result);
        }
      }),
    );
    // --- end observability ---
  };
}
