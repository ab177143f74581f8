/**
 * Our logger and EMF metrics (functions/core/logger.ts, emf-metrics.ts) against the reference, Powertools'
 * Logger and Metrics 2.36 (dev dependencies, kept for this): the same calls (support/logger-reference-runner.ts:
 * every level with and without extras, nested and odd values, bigints, circular references, Errors with
 * causes and properties, thrown values that are not Errors, reserved keys, appended, removed and reset keys,
 * the Lambda context and the cold start, levels set and refused, request loggers as observability.ts builds
 * them; EMF blobs with dimensions, dimension sets, metadata, a metric added again, units, the limits, the
 * warnings and errors, publishing with nothing stored) run through each in a child process with a fixed
 * clock, under each environment below. What each writes to stdout and to stderr must be the same, byte for
 * byte.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

/** A deployed function's environment (lib/constructs/tenant-function.ts, and what Lambda sets). */
const LAMBDA: Record<string, string> = {
  AWS_REGION: 'eu-west-1',
  AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
  AWS_LAMBDA_FUNCTION_NAME: 'tenant-api-listDocuments',
  AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '512',
  AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
  AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
  TZ: ':UTC',
  _X_AMZN_TRACE_ID: 'Root=1-67e8a2f7-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=1:a1b2c3d4:0',
  POWERTOOLS_SERVICE_NAME: 'tenant-api',
  POWERTOOLS_METRICS_NAMESPACE: 'TenantSovereign',
  POWERTOOLS_LOG_LEVEL: 'INFO',
};

const ENVIRONMENTS: Record<string, Record<string, string>> = {
  deployed: LAMBDA,
  'DEBUG': { ...LAMBDA, POWERTOOLS_LOG_LEVEL: 'DEBUG' },
  'WARN through LOG_LEVEL': { ...omit(LAMBDA, 'POWERTOOLS_LOG_LEVEL'), LOG_LEVEL: 'WARN' },
  'a level in lower case (not one)': { ...LAMBDA, POWERTOOLS_LOG_LEVEL: 'debug' },
  SILENT: { ...LAMBDA, POWERTOOLS_LOG_LEVEL: 'SILENT' },
  "Lambda's WARN over DEBUG": { ...LAMBDA, POWERTOOLS_LOG_LEVEL: 'DEBUG', AWS_LAMBDA_LOG_LEVEL: 'WARN' },
  "Lambda's FATAL": { ...LAMBDA, AWS_LAMBDA_LOG_LEVEL: 'FATAL' },
  "Lambda's DEBUG over ERROR": { ...LAMBDA, POWERTOOLS_LOG_LEVEL: 'ERROR', AWS_LAMBDA_LOG_LEVEL: 'DEBUG' },
  "Lambda's unknown level": { ...LAMBDA, AWS_LAMBDA_LOG_LEVEL: 'LOUD' },
  'dev mode (metrics off)': { ...LAMBDA, POWERTOOLS_DEV: 'true' },
  'dev mode, metrics on': { ...LAMBDA, POWERTOOLS_DEV: ' Yes ', POWERTOOLS_METRICS_DISABLED: 'false', POWERTOOLS_LOG_LEVEL: 'DEBUG' },
  'metrics disabled': { ...LAMBDA, POWERTOOLS_METRICS_DISABLED: 'on' },
  'metrics disabled: not a boolean': { ...LAMBDA, POWERTOOLS_METRICS_DISABLED: 'maybe' },
  'sampled at 1': { ...LAMBDA, POWERTOOLS_LOGGER_SAMPLE_RATE: '1' },
  "sampled at 1 under Lambda's INFO": { ...LAMBDA, POWERTOOLS_LOGGER_SAMPLE_RATE: '1', AWS_LAMBDA_LOG_LEVEL: 'INFO' },
  'sample rate out of range': { ...LAMBDA, POWERTOOLS_LOGGER_SAMPLE_RATE: '2' },
  'sample rate not a number': { ...LAMBDA, POWERTOOLS_LOGGER_SAMPLE_RATE: 'often' },
  'TZ Europe/Paris': { ...LAMBDA, TZ: 'Europe/Paris' },
  'TZ America/St_Johns (negative, half hour)': { ...LAMBDA, TZ: 'America/St_Johns' },
  'TZ unknown': { ...LAMBDA, TZ: 'Mars/Olympus_Mons' },
  'provisioned concurrency': { ...LAMBDA, AWS_LAMBDA_INITIALIZATION_TYPE: 'provisioned-concurrency' },
  'a trace header without fields': { ...LAMBDA, _X_AMZN_TRACE_ID: ' 1-67e8a2f7-0123456789abcdef01234567 ' },
  'outside Lambda': { TZ: 'UTC' },
};

function omit(env: Record<string, string>, key: string): Record<string, string> {
  const copy = { ...env };
  delete copy[key];
  return copy;
}

interface Output {
  readonly stdout: string;
  readonly stderr: string;
}

async function run(mode: 'powertools' | 'ours'): Promise<Output> {
  const { stdout, stderr } = await promisify(execFile)(
    process.execPath,
    [require.resolve('tsx/cli'), path.join(__dirname, 'support/logger-reference-runner.ts'), mode, JSON.stringify(ENVIRONMENTS)],
    { env: { PATH: process.env.PATH, TZ: 'UTC' }, timeout: 60_000, maxBuffer: 64 * 1024 * 1024 },
  );
  return { stdout, stderr };
}

/** The output of each environment, by the `== name ==` lines the runner writes. */
function byEnvironment(text: string): Record<string, string> {
  const parts: Record<string, string> = {};
  let name = '';
  for (const line of text.split(/(?<=\n)/)) {
    const marker = /^== (.*) ==\n$/.exec(line);
    if (marker) name = marker[1]!;
    else parts[name] = (parts[name] ?? '') + line;
  }
  return parts;
}

describe("our logger and metrics against Powertools' 2.36", () => {
  let reference: Output;
  let ours: Output;

  beforeAll(async () => {
    [reference, ours] = await Promise.all([run('powertools'), run('ours')]);
  });

  it.each(Object.keys(ENVIRONMENTS))('writes the same stdout and stderr: %s', (name) => {
    const expected = { stdout: byEnvironment(reference.stdout)[name], stderr: byEnvironment(reference.stderr)[name] };
    const actual = { stdout: byEnvironment(ours.stdout)[name], stderr: byEnvironment(ours.stderr)[name] };
    expect(actual.stdout?.split('\n')).toEqual(expected.stdout?.split('\n'));
    expect(actual.stderr?.split('\n')).toEqual(expected.stderr?.split('\n'));
  });

  it('writes the same bytes to each stream over the whole run', () => {
    expect(Buffer.from(ours.stdout).equals(Buffer.from(reference.stdout))).toBe(true);
    expect(Buffer.from(ours.stderr).equals(Buffer.from(reference.stderr))).toBe(true);
  });

  it('compares real output (positive controls)', () => {
    const stdout = byEnvironment(reference.stdout);
    const stderr = byEnvironment(reference.stderr);
    // Deployed: INFO lines and EMF blobs on stdout, WARN and ERROR lines and the metrics' warnings on stderr.
    expect(stdout.deployed).toContain('{"level":"INFO","message":"plain line","timestamp":"2025-03-30T00:30:15.042Z","service":"tenant-api","sampling_rate":0,"xray_trace_id":"1-67e8a2f7-0123456789abcdef01234567"}\n');
    expect(stdout.deployed).toContain('"cold_start":true');
    expect(stdout.deployed).toContain('{"_aws":{"Timestamp":1743294615042,"CloudWatchMetrics":[{"Namespace":"TenantSovereign"');
    expect(stdout.deployed).toContain('"Latency":[7,0.5,3]');
    expect(stdout.deployed).not.toContain('"message":"debug line"');
    expect(stderr.deployed).toContain('"level":"ERROR","message":"error with cause"');
    expect(stderr.deployed).toContain('"cause":{"name":"TypeError","location":');
    expect(stderr.deployed).toContain('No application metrics to publish.');
    expect(stdout.DEBUG).toContain('"level":"DEBUG"');
    expect(stdout['dev mode (metrics off)']).toContain('{\n    "level": "INFO",');
    expect(stdout['dev mode (metrics off)']).not.toContain('"_aws"');
    expect(stdout['sampled at 1']).toContain('"message":"Setting log level to DEBUG due to sampling rate"');
    expect(stdout['TZ Europe/Paris']).toContain('"timestamp":"2025-03-30T01:30:15.042+01:00"');
    expect(stderr["Lambda's WARN over DEBUG"]).toContain('does not match AWS Lambda Advanced Logging Controls');
    expect(stdout['sample rate not a number']).toContain('-- logs threw');
    expect(stdout['metrics disabled: not a boolean']).toContain('-- metrics threw');
    expect(stdout['outside Lambda']).toContain('"service":"service_undefined"');
  });
});
