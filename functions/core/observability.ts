/**
 * Logger, tracer and metrics, created once per container and imported by everything that reports.
 *
 * Logs: every line of a request comes from that request's own child logger (`log()` finds it through
 * AsyncLocalStorage), so concurrent requests in one process (the local server) never share keys. Each
 * carries the Lambda context (function_request_id, cold_start, xray_trace_id), correlation_id,
 * request_id, route, and once known tenant_id, user_id, role; never a token, an email or any other PII.
 *
 * Tracing: Powertools' tracer is loaded and created only where tracing is on (`tracingEnabled()`, then
 * `loadTracer()`); elsewhere `traced()` just runs its work and `captureClient()` returns the client.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Context } from 'aws-lambda';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { tracingEnabled } from './config';

const serviceName = 'tenant-api';

/** The container's logger: lines outside any request (cold start, background work). */
export const logger = new Logger({ serviceName });
export const metrics = new Metrics({ serviceName, namespace: 'TenantSovereign' });

export { MetricUnit } from '@aws-lambda-powertools/metrics';

/** A request's logger: the container's settings, and its own keys and Lambda context. */
class RequestLogger extends Logger {
  constructor(coldStart: boolean) {
    super({ serviceName, logLevel: logger.getLevelName() });
    // Powertools counts each logger's first use as the cold start: spend that unless this one is.
    if (!coldStart) this.getColdStart();
  }
}

/** What the request being served keeps for everything that reports during it. */
interface RequestScope {
  readonly log: Logger;
  /** The route's id (`action_type`), which names the request's Postgres subsegments. */
  readonly routeId: string | undefined;
}

const requests = new AsyncLocalStorage<RequestScope>();
let coldStart = true;

/** The logger of the request being served, or the container's outside a request. */
export function log(): Logger {
  return requests.getStore()?.log ?? logger;
}

/** The route id of the request being served; undefined outside a request. */
export function currentRouteId(): string | undefined {
  return requests.getStore()?.routeId;
}

/** Whether this is the container's first request; true exactly once. */
function takeColdStart(): boolean {
  const cold = coldStart;
  coldStart = false;
  return cold;
}

/**
 * Runs one request with its own child logger carrying `keys` and, in Lambda, the invocation context.
 * `work` receives the logger and whether this is the cold start. `keys.action_type` is the route id.
 */
export function inRequest<T>(
  keys: Record<string, string>,
  context: Context | undefined,
  work: (log: Logger, coldStart: boolean) => Promise<T>,
): Promise<T> {
  const cold = takeColdStart();
  // A logger serves one request at a time; a finished one is kept for the next (building a Logger builds
  // a Console: ~50 µs). Kept apart by whether they carry a Lambda context, which only addContext sets.
  const idle = context ? idleLoggers.withContext : idleLoggers.without;
  const child = idle.pop() ?? new RequestLogger(cold);
  if (context) child.addContext(context);
  child.appendKeys(keys);
  return requests.run({ log: child, routeId: keys.action_type }, () => work(child, cold)).finally(() => {
    child.resetKeys(); // the request's keys, and those its work appended
    if (idle.length < MAX_IDLE_LOGGERS) idle.push(child);
  });
}

/** Finished request loggers, ready for the next request (Lambda: one; the local server: a few). */
const idleLoggers = { withContext: [] as RequestLogger[], without: [] as RequestLogger[] };
const MAX_IDLE_LOGGERS = 16;

const importTracer = () => import('@aws-lambda-powertools/tracer');
/** Powertools' tracer, as the dynamic import (the ES build) types it. */
type Tracer = InstanceType<Awaited<ReturnType<typeof importTracer>>['Tracer']>;

let loadedTracer: Tracer | null | undefined;
let loadingTracer: Promise<void> | undefined;

/**
 * Creates Powertools' tracer where tracing is on (`tracingEnabled()`), once per container; the wrapper
 * awaits it before a request's work, so every AWS client (created on first use) can be captured.
 * Imported dynamically: the bundles keep the tracer's ES build (the `import` condition, as for the other
 * Powertools packages, so their shared code is bundled once), and esbuild evaluates it and the X-Ray SDK
 * only when this runs, so where tracing is off the SDK's async hook, which costs every promise, is never
 * installed.
 */
export function loadTracer(): Promise<void> {
  loadingTracer ??= tracingEnabled()
    ? importTracer().then(({ Tracer: PowertoolsTracer }) => {
        loadedTracer = new PowertoolsTracer({ serviceName });
      })
    : Promise.resolve().then(() => {
        loadedTracer = null;
      });
  return loadingTracer;
}

/** Powertools' tracer once `loadTracer()` has created it where tracing is on; undefined elsewhere. */
export function tracer(): Tracer | undefined {
  return loadedTracer ?? undefined;
}

/** What traced work may add to its subsegment (a no-op where tracing is off). */
export interface Span {
  annotate(key: string, value: string | number | boolean): void;
  /** Marks the subsegment as failed with this error (its name, message and stack). */
  fail(error: unknown): void;
}

const noSpan: Span = { annotate: () => undefined, fail: () => undefined };

/**
 * Runs `work` in a new X-Ray subsegment `name` of the current segment, recording its error (name and
 * message, no values of the request) if it throws. Without tracing, or outside a traced invocation, only
 * runs `work`.
 */
export async function traced<T>(name: string, work: (span: Span) => Promise<T>): Promise<T> {
  const t = tracer();
  const parent = t?.getSegment();
  if (!t || !parent) return work(noSpan);
  const subsegment = parent.addNewSubsegment(name);
  t.setSegment(subsegment);
  try {
    return await work({
      annotate: (key, value) => subsegment.addAnnotation(key, value),
      fail: (error) => subsegment.addError(error instanceof Error ? error : new Error(String(error))),
    });
  } catch (error) {
    subsegment.addError(error as Error);
    throw error;
  } finally {
    subsegment.close();
    t.setSegment(parent);
  }
}

/** An AWS SDK v3 client whose calls appear in the trace where tracing is on. */
export function captureClient<C>(client: C): C {
  const t = tracer();
  return t ? t.captureAWSv3Client(client) : client;
}
