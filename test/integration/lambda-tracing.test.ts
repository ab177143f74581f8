/**
 * Tracing and Lambda context as they happen inside Lambda: a handler runs in a child process whose
 * environment is the one the Lambda runtime sets (function name, execution environment, a trace header
 * in `_X_AMZN_TRACE_ID` per invocation, the X-Ray daemon address), the daemon is a UDP listener on
 * loopback, and the test reads the segment documents the functions send it (functions/core/xray.ts).
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Sql } from '../../functions/core/db';
import { adminSql, createTenant, uniqueTenantId } from '../support/db';
import { sampledTraceHeader, startXrayDaemon, type XrayDaemon } from '../support/xray-daemon';
import type { Invocation } from './support/lambda-runner';

interface SegmentDocument {
  id: string;
  name: string;
  trace_id: string;
  parent_id?: string;
  type?: string;
  annotations?: Record<string, unknown>;
  fault?: boolean;
  subsegments?: SegmentDocument[];
  [key: string]: unknown;
}

interface EmfDocument {
  _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[] };
  [field: string]: unknown;
}

let admin: Sql;
let daemon: XrayDaemon;
const documents = (): SegmentDocument[] => daemon.documents<SegmentDocument>();

beforeAll(async () => {
  admin = adminSql();
  daemon = await startXrayDaemon();
});

afterAll(async () => {
  await daemon.close();
  await admin.end();
});

/**
 * Every subsegment of the documents received, nested ones included. A subsegment nested in a document
 * carries no `trace_id` of its own (X-Ray reads it from the document): it is given its document's here.
 */
function allSubsegments(): SegmentDocument[] {
  const out: SegmentDocument[] = [];
  const visit = (doc: SegmentDocument, traceId: string) => {
    out.push({ ...doc, trace_id: doc.trace_id ?? traceId });
    for (const sub of doc.subsegments ?? []) visit(sub, doc.trace_id ?? traceId);
  };
  for (const doc of documents()) visit(doc, doc.trace_id);
  return out;
}

async function runInLambda(invocations: Invocation[]) {
  const env = {
    PATH: process.env.PATH,
    AWS_REGION: 'us-east-1',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
    AWS_LAMBDA_FUNCTION_NAME: 'tenant-api-listDocuments',
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '512',
    AWS_LAMBDA_LOG_GROUP_NAME: '/aws/lambda/tenant-api-listDocuments',
    AWS_LAMBDA_LOG_STREAM_NAME: '2026/12/01/[$LATEST]0123456789abcdef',
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    LAMBDA_TASK_ROOT: path.resolve(__dirname, '../..'),
    AWS_XRAY_DAEMON_ADDRESS: daemon.address,
    AWS_XRAY_CONTEXT_MISSING: 'LOG_ERROR',
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    POWERTOOLS_SERVICE_NAME: 'tenant-api',
    POWERTOOLS_LOG_LEVEL: 'INFO',
    POWERTOOLS_METRICS_DISABLED: 'false',
    POWERTOOLS_METRICS_NAMESPACE: 'TenantSovereign',
    DATABASE_URL: process.env.TEST_RUNTIME_DATABASE_URL,
  };
  const { stdout, stderr } = await promisify(execFile)(
    process.execPath,
    [require.resolve('tsx/cli'), path.join(__dirname, 'support/lambda-runner.ts'), JSON.stringify(invocations)],
    { env, timeout: 60_000 },
  );
  // The last datagrams may still be in flight on loopback.
  await new Promise((resolve) => setTimeout(resolve, 300));
  // The logger writes WARN and ERROR lines to stderr (as Powertools does), the others to stdout; both reach CloudWatch.
  const lines = `${stdout}\n${stderr}`.split('\n').filter(Boolean);
  const json = lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  return {
    output: stdout + stderr,
    results: lines.filter((l) => l.startsWith('RESULT ')).map((l) => JSON.parse(l.slice(7)) as { statusCode: number; headers: Record<string, string> }),
    logs: json.filter((l) => !('_aws' in l)).sort((a, b) => String(a.timestamp).localeCompare(String(b.timestamp))),
    // Embedded metric format documents: what CloudWatch turns into metrics.
    emf: json.filter((l) => '_aws' in l) as EmfDocument[],
  };
}

describe('a route handler invoked the way Lambda invokes it', () => {
  let tenantId: string;
  let userId: string;
  const cold = sampledTraceHeader();
  const warm = sampledTraceHeader();
  const failing = sampledTraceHeader();
  let run: Awaited<ReturnType<typeof runInLambda>>;

  beforeAll(async () => {
    tenantId = uniqueTenantId('trace');
    userId = (await createTenant(admin, tenantId)).members.user;
    run = await runInLambda([
      { traceHeader: cold.header, awsRequestId: randomUUID(), tenantId, userId, correlationId: 'order-42:retry.1' },
      { traceHeader: warm.header, awsRequestId: randomUUID(), tenantId, userId },
      { traceHeader: failing.header, awsRequestId: randomUUID(), tenantId, userId, fails: true },
    ]);
  }, 90_000);

  it('answers as usual, echoing the correlation id', () => {
    expect(run.results.map((r) => r.statusCode)).toEqual([200, 200, 500]);
    expect(run.results[0]!.headers['x-correlation-id']).toBe('order-42:retry.1');
    // Without the header the correlation id is the API Gateway request id.
    expect(run.results[1]!.headers['x-correlation-id']).toBe(run.results[1]!.headers['x-request-id']);
  });

  it('never tries to annotate the Lambda root segment', () => {
    expect(run.output).not.toMatch(/cannot (annotate|add metadata)/i);
  });

  it('sends one handler subsegment per invocation, in that invocation\'s trace, annotated with tenant, route, role, cold start and status', () => {
    const handlers = allSubsegments().filter((s) => s.name === '## listDocuments');
    expect(handlers.map((s) => s.trace_id).sort()).toEqual([cold.root, warm.root, failing.root].sort());
    const of = (root: string) => handlers.find((s) => s.trace_id === root)!;
    expect(of(cold.root).annotations).toEqual(
      expect.objectContaining({ tenant_id: tenantId, route: 'listDocuments', role: 'user', ColdStart: true, status: 200 }),
    );
    expect(of(warm.root).annotations).toEqual(expect.objectContaining({ ColdStart: false, status: 200 }));
    // The user id is a log key, not a trace annotation.
    expect(of(warm.root).annotations).not.toHaveProperty('user_id');
  });

  it('marks a failed invocation as a fault with the error annotated', () => {
    const handler = allSubsegments().find((s) => s.name === '## listDocuments' && s.trace_id === failing.root)!;
    expect(handler.annotations).toEqual(expect.objectContaining({ status: 500, error: 'internal' }));
    expect(handler.fault).toBe(true);
  });

  it('shows the Postgres transaction as a subsegment of the handler, named by the route, without SQL', () => {
    const subs = allSubsegments();
    for (const root of [cold.root, warm.root]) {
      const handler = subs.find((s) => s.name === '## listDocuments' && s.trace_id === root)!;
      const db = subs.find((s) => s.name === 'postgres listDocuments' && s.trace_id === root);
      expect(db).toBeDefined();
      const nested = (handler.subsegments ?? []).some((s) => s.id === db!.id) || db!.parent_id === handler.id;
      expect(nested).toBe(true);
      expect(JSON.stringify(db)).not.toMatch(/select|insert|tenant_id|set_config/i);
    }
  });

  it('sends each invocation\'s subsegments in one datagram, the Postgres one nested in the handler\'s', () => {
    for (const { root } of [cold, warm, failing]) {
      const sent = documents().filter((d) => d.trace_id === root);
      expect(sent.map((d) => [d.name, d.type])).toEqual([['## listDocuments', 'subsegment']]);
    }
    const warmHandler = documents().find((d) => d.trace_id === warm.root)!;
    expect(warmHandler.parent_id).toBe(warm.header.match(/Parent=([0-9a-f]{16})/)![1]);
    expect((warmHandler.subsegments ?? []).map((s) => s.name)).toEqual(['postgres listDocuments']);
  });

  it('puts the Lambda context and the correlation id on every log line', () => {
    const requestLines = run.logs.filter((l) => l.message === 'request');
    expect(requestLines).toHaveLength(3);
    for (const line of run.logs) {
      expect(line).toEqual(
        expect.objectContaining({
          function_request_id: expect.any(String),
          cold_start: expect.any(Boolean),
          xray_trace_id: expect.stringMatching(/^1-/),
          correlation_id: expect.any(String),
        }),
      );
    }
    expect(requestLines.map((l) => l.cold_start)).toEqual([true, false, false]);
    expect(requestLines.map((l) => l.xray_trace_id)).toEqual([cold.root, warm.root, failing.root]);
    expect(requestLines[0]).toEqual(
      expect.objectContaining({ correlation_id: 'order-42:retry.1', tenant_id: tenantId, user_id: userId, role: 'user', status: 200 }),
    );
  });

  it('emits metrics whose dimensions are route, plan and status class, with the tenant as metadata only', () => {
    const named = (name: string) => run.emf.filter((d) => d._aws.CloudWatchMetrics.some((m) => m.Metrics.some((x) => x.Name === name)));
    const responses = named('Responses');
    expect(responses).toHaveLength(3);
    expect(responses.map((d) => [d.plan, d.status_class])).toEqual([['pro', '2xx'], ['pro', '2xx'], ['pro', '5xx']]);
    for (const doc of run.emf) {
      const dimensions = doc._aws.CloudWatchMetrics.flatMap((m) => m.Dimensions.flat());
      expect(dimensions).not.toContain('tenant_id');
      expect(doc.tenant_id).toBe(tenantId);
    }
    for (const doc of responses) {
      expect(doc._aws.CloudWatchMetrics[0]!.Dimensions).toEqual([['service', 'route', 'plan', 'status_class']]);
      expect(doc.route).toBe('listDocuments');
    }
    // The alarms' metrics keep their dimension set: service and route.
    expect(named('Requests').map((d) => d._aws.CloudWatchMetrics[0]!.Dimensions)).toEqual(Array(3).fill([['service', 'route']]));
  });
});
