/**
 * What the wrapper reports once per request: the correlation id it answers under, one log line, the
 * trace annotations of the outcome, and the EMF metrics. Metric dimensions stay of low cardinality
 * (service, route, plan, status class); the tenant is EMF metadata, a field that Logs Insights can
 * group by without creating a metric per tenant.
 */
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { monotonicMs } from './clock';
import { AppError } from './errors';
import { header } from './http';
import { log, metrics, MetricUnit, type Span } from './observability';

const CORRELATION_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The caller's `X-Correlation-Id` when it is 1–128 of [A-Za-z0-9._:-], else the request id. */
export function correlationIdOf(event: APIGatewayProxyEvent, requestId: string): string {
  const sent = header(event, 'x-correlation-id');
  return sent !== undefined && CORRELATION_ID.test(sent) ? sent : requestId;
}

/** One request as the wrapper knows it while serving it. */
export interface RequestFacts {
  readonly routeId: string;
  readonly correlationId: string;
  /** `monotonicMs()` when the request arrived. */
  readonly started: number;
  readonly span: Span;
  /** Set once the request's tenant is known. */
  tenantId?: string;
  /** The tenant's plan, set once the request guard has answered. */
  plan?: string;
  /** Adds keys to the request's log lines and (except the user) to its trace annotations. */
  note(keys: Record<string, string>): void;
}

/** `2xx`…`5xx`: five values, so a dimension of it never grows. */
export function statusClass(status: number): string {
  return `${Math.floor(status / 100)}xx`;
}

/** The request's one log line, trace outcome and metrics. */
export function recordRequest(facts: RequestFacts, status: number, error?: unknown): void {
  const durationMs = Math.round((monotonicMs() - facts.started) * 1000) / 1000;
  const failed = status >= 500;
  const refusal = !failed && error instanceof AppError ? error.detail : undefined;

  facts.span.annotate('status', status);
  if (error !== undefined) facts.span.annotate('error', failed || !(error instanceof AppError) ? 'internal' : error.constructor.name);
  if (failed) facts.span.fail(error);

  metrics.addDimension('route', facts.routeId);
  metrics.addMetric('Requests', MetricUnit.Count, 1);
  metrics.addMetric('Latency', MetricUnit.Milliseconds, durationMs);
  if (failed) metrics.addMetric('ServerErrors', MetricUnit.Count, 1);
  if (status === 429) metrics.addMetric('QuotaRejections', MetricUnit.Count, 1);
  if (facts.tenantId !== undefined) metrics.addMetadata('tenant_id', facts.tenantId);
  metrics.publishStoredMetrics();
  // Responses by plan and status class in a blob of its own, published by the same instance once the
  // first is out (publishing clears its dimensions and metadata); the route-only metrics above keep the
  // dimension set the alarms are built on. Plan `none`: refused before the guard told it (401, 403 on the
  // role), a public route, a platform route without a tenant.
  metrics.addDimensions({ route: facts.routeId, plan: facts.plan ?? 'none', status_class: statusClass(status) });
  if (facts.tenantId !== undefined) metrics.addMetadata('tenant_id', facts.tenantId);
  metrics.addMetric('Responses', MetricUnit.Count, 1);
  metrics.publishStoredMetrics();

  const fields = { status, duration_ms: durationMs, ...(refusal !== undefined ? { reason: refusal } : {}) };
  if (failed) log().error('request', { ...fields, error: error as Error });
  else log().info('request', fields);
}
