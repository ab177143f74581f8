/**
 * Logger, tracer and metrics, created once per container and imported by everything that reports.
 *
 * Logs and metrics: our own logger.ts and emf-metrics.ts, which write what Powertools' Logger and Metrics
 * write (test/integration/logger-reference.test.ts) without their import cost.
 *
 * Logs: every line of a request comes from that request's own child logger (`log()` finds it through
 * AsyncLocalStorage), so concurrent requests in one process (the local server) never share keys. Each
 * carries the Lambda context (function_request_id, cold_start, xray_trace_id), correlation_id,
 * request_id, route, and once known tenant_id, user_id, role; never a token, an email or any other PII.
 *
 * Tracing: X-Ray subsegments through our own emitter (xray.ts: the documents the X-Ray SDK sends, at a
 * fraction of its cost), only where tracing is on (`tracingEnabled()`, decided once per container at the first use);
 * elsewhere `traced()` just runs its work, `captureClient()` returns the client and `tracedFetch()` is
 * `fetch`.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Context } from 'aws-lambda';
import { lambdaTraceHeader, tracingEnabled, xrayDaemonAddress } from './config';
import { Metrics } from './emf-metrics';
import { Logger } from './logger';
import { addError, annotate, captureAwsClient, configureXray, inSubsegment, tracedFetch as xrayFetch } from './xray';

const serviceName = 'tenant-api';

/** The container's logger: lines outside any request (cold start, background work). */
export const logger = new Logger({ serviceName });
export const metrics = new Metrics({ serviceName, namespace: 'TenantSovereign' });

export { MetricUnit } from './emf-metrics';

/** A request's logger: the container's settings, and its own keys and Lambda context. */
class RequestLogger extends Logger {
  constructor(coldStart: boolean) {
    super({ serviceName, logLevel: logger.getLevelName() });
    // A logger counts its first addContext as the cold start (as Powertools' does): spend that unless this one is.
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
  // A new logger per request (~2 µs), never one a finished request used: work that outlives its request
  // (answered 504 at its deadline, still running) keeps logging under its own request's keys, never under
  // the next request's tenant, user and Lambda context.
  const child = new RequestLogger(cold);
  if (context) child.addContext(context);
  child.appendKeys(keys);
  return requests.run({ log: child, routeId: keys.action_type }, () => work(child, cold));
}

let tracing: boolean | undefined;

/** Whether this container traces (`tracingEnabled()`), decided once; the emitter is configured then. */
function tracingOn(): boolean {
  if (tracing === undefined) {
    tracing = tracingEnabled();
    configureXray({
      enabled: () => tracing === true,
      traceHeader: () => lambdaTraceHeader(),
      daemonAddress: () => xrayDaemonAddress(),
      report: (message, error) => logger.warn(message, { error }),
    });
  }
  return tracing;
}

/** What traced work may add to its subsegment (a no-op where tracing is off). */
export interface Span {
  annotate(key: string, value: string | number | boolean): void;
  /** Marks the subsegment as failed with this error (its name, message and stack). */
  fail(error: unknown): void;
}

const noSpan: Span = { annotate: () => undefined, fail: () => undefined };

/**
 * Runs `work` in a new X-Ray subsegment `name` of the current one (or of the invocation's facade segment),
 * recording its error (name and message, no values of the request) if it throws. Without tracing, or
 * outside a sampled invocation, only runs `work`.
 */
export function traced<T>(name: string, work: (span: Span) => Promise<T>): Promise<T> {
  if (!(tracing ?? tracingOn())) return work(noSpan);
  return inSubsegment(name, (open) =>
    work(
      open
        ? {
            annotate: (key, value) => annotate(open, key, value),
            fail: (error) => addError(open, error instanceof Error ? error : new Error(String(error))),
          }
        : noSpan,
    ),
  );
}

/** An AWS SDK v3 client (or aws-json.ts's) whose calls appear in the trace where tracing is on. */
export function captureClient<C>(client: C): C {
  return tracingOn() ? captureAwsClient(client) : client;
}

/** `fetch`, as a `remote` subsegment of the trace where tracing is on (a `data:` URL is never one). */
export function tracedFetch(url: string | URL, init?: RequestInit): Promise<Response> {
  return tracingOn() ? xrayFetch(url, init) : fetch(url, init);
}
