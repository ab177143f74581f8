/**
 * One sequence of logger and metrics calls, run through Powertools' Logger and Metrics 2.36 (`powertools`,
 * the reference: what functions/core/observability.ts used before its own) or through ours (`ours`:
 * functions/core/logger.ts and emf-metrics.ts), once for each environment of argv[3] (JSON: name →
 * variables). Before each, the process's environment is replaced by that one (both read it when a logger
 * or a metrics publisher is built, and some of it at each line), and `== name ==` is written to stdout and
 * to stderr. The clock is fixed: `new Date()` and `Date.now()` give one instant.
 */
import type { Context } from 'aws-lambda';

const FIXED = Date.UTC(2025, 2, 30, 0, 30, 15, 42);
const RealDate = Date;
class FixedDate extends RealDate {
  constructor(...args: unknown[]) {
    if (args.length === 0) super(FIXED);
    else super(...(args as [string]));
  }

  static override now(): number {
    return FIXED;
  }
}
globalThis.Date = FixedDate as DateConstructor;

type Mode = 'powertools' | 'ours';

interface LoggerLike {
  debug(message: string, ...extras: unknown[]): void;
  info(message: string, ...extras: unknown[]): void;
  warn(message: string, ...extras: unknown[]): void;
  error(message: string, ...extras: unknown[]): void;
  appendKeys(keys: Record<string, unknown>): void;
  removeKeys(keys: string[]): void;
  resetKeys(): void;
  addContext(context: Context): void;
  getLevelName(): string;
  setLogLevel(level: string): void;
  getColdStart(): boolean;
}

interface MetricsLike {
  addDimension(name: string, value: string): unknown;
  addDimensions(dimensions: Record<string, string>): unknown;
  addMetadata(key: string, value: unknown): unknown;
  addMetric(name: string, unit: string, value: number): unknown;
  publishStoredMetrics(): unknown;
}

interface Impl {
  readonly Logger: new (options?: { serviceName?: string; logLevel?: string }) => LoggerLike;
  readonly Metrics: new (options?: { serviceName?: string; namespace?: string }) => MetricsLike;
  readonly unit: { readonly Count: string; readonly Milliseconds: string; readonly Bytes: string; readonly CountPerSecond: string };
}

function load(mode: Mode): Impl {
  if (mode === 'powertools') {
    const { Logger } = require('@aws-lambda-powertools/logger') as typeof import('@aws-lambda-powertools/logger');
    const { Metrics, MetricUnit } = require('@aws-lambda-powertools/metrics') as typeof import('@aws-lambda-powertools/metrics');
    return { Logger: Logger as unknown as Impl['Logger'], Metrics: Metrics as unknown as Impl['Metrics'], unit: MetricUnit };
  }
  const { Logger } = require('../../../functions/core/logger') as typeof import('../../../functions/core/logger');
  const { Metrics, MetricUnit } = require('../../../functions/core/emf-metrics') as typeof import('../../../functions/core/emf-metrics');
  return { Logger: Logger as unknown as Impl['Logger'], Metrics: Metrics as unknown as Impl['Metrics'], unit: MetricUnit };
}

const context = {
  functionName: 'tenant-api-listDocuments',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:tenant-api-listDocuments',
  memoryLimitInMB: '512',
  awsRequestId: 'c6af9ac6-7b61-11e6-9a41-93e812345678',
  logGroupName: '/aws/lambda/tenant-api-listDocuments',
  logStreamName: '2025/03/30/[$LATEST]abc',
  callbackWaitsForEmptyEventLoop: true,
} as unknown as Context;

/** Writes a marker line to stdout, which both modes write alike. */
function note(text: string): void {
  process.stdout.write(`-- ${text}\n`);
}

/** Runs `work`, writing what it threw; `name: false` leaves out the error's class (only the message is Powertools'). */
function attempt(what: string, work: () => unknown, { name = true } = {}): void {
  try {
    work();
  } catch (error) {
    note(`${what} threw ${name ? `${(error as Error).name}: ` : ''}${(error as Error).message}`);
  }
}

class AppError extends Error {
  readonly detail = { field: 'name', reason: 'too long' };

  constructor(message: string) {
    super(message);
    this.name = 'AppError';
  }
}

function logs({ Logger }: Impl): void {
  const logger = new Logger({ serviceName: 'tenant-api' });
  note(`level ${logger.getLevelName()}`);
  logger.debug('debug line', { step: 1 });
  logger.info('plain line');
  logger.info('scalars', { count: 3, ratio: 0.5, yes: true, no: false, zero: 0, empty: '', nothing: null, missing: undefined, text: 'a "quoted" \\ line\nnext', unicode: 'é ✓ 😀' });
  logger.info('nested', {
    tenant: { id: 't1', plan: { name: 'pro', limits: [1, 2, { deep: true, empty: '', nothing: null }] } },
    list: [1, 'two', null, undefined, { three: 3 }],
    when: new Date(0),
    map: new Map([[1, 2]]),
    set: new Set([1]),
    big: 12345678901234567890n,
    nested_big: { n: 1n, list: [2n] },
    fn: () => 1,
  });
  const circular: Record<string, unknown> = { name: 'loop' };
  circular.self = circular;
  circular.child = { parent: circular, sibling: 'x' };
  const array: unknown[] = [1];
  array.push(array);
  array.push({ back: array });
  logger.warn('circular', { circular, array });
  const shared = { s: 1 };
  logger.info('shared', { a: shared, b: shared, c: [shared, shared] });
  const cause = new TypeError('the cause');
  const error = new Error('it failed', { cause }) as Error & Record<string, unknown>;
  error.code = 'E_FAIL';
  error.statusCode = 503;
  logger.error('error with cause', { error });
  logger.error('error as an argument', error);
  logger.error('cause not an error', { error: new Error('outer', { cause: 'just a string' }) });
  logger.error('cause chain', { error: new Error('top', { cause: new Error('middle', { cause: new RangeError('bottom') }) }) });
  logger.error('subclass', { error: new AppError('bad input') });
  logger.error('aggregate', { error: new AggregateError([new Error('one'), new RangeError('two')], 'several') });
  const noStack = new Error('no stack');
  noStack.stack = undefined;
  logger.error('no stack', { error: noStack });
  const frameless = new Error('frameless');
  frameless.stack = 'Error: frameless\n    at <anonymous>';
  logger.error('frameless', { error: frameless });
  logger.error('errors deeper', { failures: [new Error('in a list')], wrapped: { error: new SyntaxError('in an object') } });
  logger.error('thrown string', { error: 'a string' });
  logger.error('thrown number', { error: 42 });
  logger.error('thrown object', { error: { message: 'plain object', code: 7 } });
  logger.error('thrown null', { error: null });
  logger.error('thrown undefined', { error: undefined });
  logger.warn('extra string', 'just text');
  logger.info('several extras', null, undefined, { a: 1 }, { a: 2, b: { c: 1 } }, { b: { d: 2 } });
  logger.info('reserved', { level: 'x', message: 'y', service: 'z', timestamp: 't', sampling_rate: 1, other: 'kept' });
  logger.info('base keys from extras', { cold_start: 'yes', function_name: 'f', xray_trace_id: 'x', tenant_id: 'from extra', function_arn: undefined });
  logger.info('', { empty: 'message' });

  logger.appendKeys({ correlation_id: 'c-1', route: 'listDocuments', nested: { a: 1, list: [1, 2, 3] } });
  logger.appendKeys({ nested: { b: 2, list: [9] }, level: 'reserved' });
  logger.info('appended');
  logger.removeKeys(['route', 'never']);
  logger.info('route removed');
  logger.appendKeys({ route: 'again', tenant_id: 't-1', undefined_key: undefined, empty_key: '' });
  logger.info('route appended again');
  logger.info('extras over appended', { correlation_id: 'override', nested: { c: 3 } });
  logger.appendKeys({ undefined_key: 'now set' });
  logger.info('a key first appended undefined');
  logger.resetKeys();
  logger.info('reset');

  logger.addContext(context);
  logger.info('with context');
  note(`cold start after addContext ${logger.getColdStart()}`);
  logger.addContext({ ...context, awsRequestId: 'second-request' } as Context);
  logger.warn('second invocation');

  // observability.ts's request loggers: the container's level, the cold start spent unless it is theirs.
  const cold = new Logger({ serviceName: 'tenant-api', logLevel: logger.getLevelName() });
  cold.addContext(context);
  cold.appendKeys({ correlation_id: 'c-2', action_type: 'listDocuments' });
  cold.info('request', { status: 200, duration_ms: 12.345 });
  const warm = new Logger({ serviceName: 'tenant-api', logLevel: logger.getLevelName() });
  warm.getColdStart();
  warm.addContext(context);
  warm.error('request', { status: 500, duration_ms: 1, error: new Error('boom') });

  const quiet = new Logger({ serviceName: 'tenant-api', logLevel: 'warn' });
  note(`quiet level ${quiet.getLevelName()}`);
  quiet.info('hidden');
  quiet.warn('shown');
  logger.setLogLevel('ERROR');
  note(`after setLogLevel ${logger.getLevelName()}`);
  logger.warn('hidden');
  logger.error('shown');
  attempt('setLogLevel LOUD', () => logger.setLogLevel('LOUD'));
  attempt('setLogLevel debug', () => logger.setLogLevel('debug'));
  logger.setLogLevel('SILENT');
  logger.error('silent');
  logger.setLogLevel('DEBUG');
  logger.debug('debug again');
  note(`final level ${logger.getLevelName()}`);

  const fromEnv = new Logger();
  fromEnv.info('service from the environment');
}

function metrics({ Metrics, unit }: Impl): void {
  const m = new Metrics({ serviceName: 'tenant-api', namespace: 'TenantSovereign' });
  // request-log.ts's two blobs.
  m.addDimension('route', 'listDocuments');
  m.addMetric('Requests', unit.Count, 1);
  m.addMetric('Latency', unit.Milliseconds, 12.345);
  m.addMetric('ServerErrors', unit.Count, 1);
  m.addMetadata('tenant_id', 't-1');
  m.publishStoredMetrics();
  m.addDimensions({ route: 'listDocuments', plan: 'pro', status_class: '2xx' });
  m.addMetadata('tenant_id', 't-1');
  m.addMetric('Responses', unit.Count, 1);
  m.publishStoredMetrics();
  // Nothing stored.
  m.publishStoredMetrics();
  // The same metric again, more dimensions, metadata of any shape.
  m.addMetric('Latency', unit.Milliseconds, 7);
  m.addMetric('Latency', unit.Milliseconds, 0.5);
  m.addMetric('Latency', unit.Milliseconds, 3);
  m.addMetric('Bytes', unit.Bytes, 1024);
  m.addMetric('Rate', unit.CountPerSecond, 2.5);
  m.addDimension('route', 'a');
  m.addDimension('route', 'b');
  m.addDimension('service', 'other');
  m.addDimension('', 'x');
  m.addDimension('blank', ' ');
  m.addDimensions({ plan: 'free', route: 'c' });
  m.addDimensions({ plan: 'pro', '': 'x', status_class: '' });
  m.addDimensions({});
  m.addMetadata('detail', { nested: [1, 2], text: 'é' });
  m.addMetadata('count', 3);
  m.publishStoredMetrics();
  // Errors.
  m.addMetric('Bytes', unit.Bytes, 1);
  attempt('another unit', () => m.addMetric('Bytes', unit.Count, 1));
  attempt('empty name', () => m.addMetric('', unit.Count, 1));
  attempt('long name', () => m.addMetric('x'.repeat(256), unit.Count, 1));
  attempt('unknown unit', () => m.addMetric('Furlongs', 'Furlongs', 1));
  attempt('text value', () => m.addMetric('Text', unit.Count, '1' as unknown as number));
  m.publishStoredMetrics();
  // Keys in two roles.
  m.addMetadata('plan', 'from metadata');
  m.addDimensions({ plan: 'from a set' });
  m.addMetric('Ok', unit.Count, 1);
  m.publishStoredMetrics();
  m.addDimension('route', 'r');
  m.addMetric('route', unit.Count, 1);
  attempt('metric named as a dimension', () => m.publishStoredMetrics());
  m.addMetric('After', unit.Count, 1);
  m.publishStoredMetrics();
  // Limits: 100 values of one metric, 100 metrics.
  for (let i = 0; i < 101; i++) m.addMetric('Many', unit.Count, i);
  m.publishStoredMetrics();
  for (let i = 0; i < 101; i++) m.addMetric(`M${i}`, unit.Count, 1);
  m.publishStoredMetrics();
  const dimensions: Record<string, string> = {};
  for (let i = 0; i < 29; i++) dimensions[`d${i}`] = 'v';
  attempt('30 dimensions in a set', () => m.addDimensions(dimensions));
  for (let i = 0; i < 28; i++) m.addDimension(`d${i}`, 'v');
  attempt('30th dimension', () => m.addDimension('d28', 'v'));
  m.addMetric('Wide', unit.Count, 1);
  m.publishStoredMetrics();
  // The namespace and service from the environment.
  const fromEnv = new Metrics();
  fromEnv.addMetric('FromEnv', unit.Count, 1);
  fromEnv.publishStoredMetrics();
}

function main(): void {
  const mode = process.argv[2] as Mode;
  const environments = JSON.parse(process.argv[3]!) as Record<string, Record<string, string>>;
  const impl = load(mode);
  for (const [name, env] of Object.entries(environments)) {
    for (const key of Object.keys(process.env)) delete process.env[key];
    Object.assign(process.env, env);
    process.stdout.write(`== ${name} ==\n`);
    process.stderr.write(`== ${name} ==\n`);
    // A malformed variable fails the constructor with Powertools' message; ours is config.ts's ConfigError.
    attempt('logs', () => logs(impl), { name: false });
    attempt('metrics', () => metrics(impl), { name: false });
  }
}

main();
