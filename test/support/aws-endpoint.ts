/**
 * A local endpoint for proving the functions' small AWS clients against the SDK's (test/unit/aws-json.test.ts,
 * aws-s3.test.ts): it records every request as it arrived and answers what the test says, and helpers to
 * read the X-Ray subsegment a captured client records and to run with a given environment.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import AWSXRay from 'aws-xray-sdk-core';

export interface Recorded {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer;
}

export interface Answer {
  status: number;
  body: string;
  headers?: Record<string, string>;
}

/**
 * One local endpoint: records requests, answers from a queue (the last answer repeats), or never.
 * `headers(n)`: what every answer carries besides its own (the n-th request's id).
 */
export function recordingEndpoint(headers: (n: number) => Record<string, string>, first: Answer) {
  const requests: Recorded[] = [];
  let answers: Answer[] = [first];
  let silent = false;
  const srv = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const received: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) received[k] = Array.isArray(v) ? v.join(', ') : String(v);
      requests.push({ method: req.method!, path: req.url!, headers: received, body: Buffer.concat(chunks) });
      if (silent) return;
      const answer = answers.length > 1 ? answers.shift()! : answers[0]!;
      res.writeHead(answer.status, { ...headers(requests.length), ...answer.headers });
      res.end(answer.body);
    });
  });
  return {
    requests,
    answer(...next: Answer[]) {
      answers = next;
    },
    silence() {
      silent = true;
    },
    async start(): Promise<string> {
      await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
      return `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        srv.closeAllConnections();
        srv.close(() => resolve());
      }),
  };
}

/**
 * Starts `endpoint` for the enclosing `describe` (and stops it after), clearing its record before each
 * test; `.url` is its address once started.
 */
export function startedForSuite<E extends { requests: Recorded[]; start(): Promise<string>; stop(): Promise<void> }>(endpoint: E): E & { url: string } {
  const started = Object.assign(endpoint, { url: '' });
  beforeAll(async () => {
    started.url = await endpoint.start();
  });
  afterAll(() => endpoint.stop());
  beforeEach(() => {
    endpoint.requests.length = 0;
  });
  return started;
}

/** Example credentials (AWS's documentation keys), with and without a session token: every signing test runs with both. */
export const withToken = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', sessionToken: 'session/token+value=' };
export const withoutToken = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
export const CREDENTIAL_CASES = [
  ['with a session token', withToken],
  ['without a session token', withoutToken],
] as const;

/** The subsegment X-Ray's own v3 instrumentation records for one call of `client`, without its ids and times. */
export async function xraySubsegmentOf(client: object, send: () => Promise<unknown>): Promise<Record<string, unknown>> {
  AWSXRay.setContextMissingStrategy('IGNORE_ERROR');
  // Manual mode: the segment is handed to the instrumentation instead of being found in a Lambda context.
  AWSXRay.enableManualMode();
  const segment = new AWSXRay.Segment('route', '1-5759e988-bd862e3fe1be46a994272793', '53995c3f42cd8ad8');
  AWSXRay.captureAWSv3Client(client as never, segment);
  await send().catch(() => undefined);
  const sub = segment.subsegments![0] as unknown as { toJSON?: () => object };
  const { id, start_time, end_time, parent, segment: _s, ...rest } = JSON.parse(JSON.stringify(sub.toJSON?.() ?? sub));
  void id; void start_time; void end_time; void parent; void _s;
  return rest as Record<string, unknown>;
}

/** A subsegment as two clients' can be equal: no request id, the cause as its exceptions' types and messages. */
export function comparableSubsegment(s: Record<string, unknown>): Record<string, unknown> {
  const aws = { ...(s.aws as Record<string, unknown>), request_id: undefined };
  const cause = s.cause as { exceptions?: { message: string; type?: string }[] } | undefined;
  return { ...s, aws, cause: cause?.exceptions?.map((e) => [e.type, e.message]) };
}

/** The trace header X-Ray's instrumentation puts on a request of the segment above. */
export const TRACE_HEADER = /^Root=1-5759e988-bd862e3fe1be46a994272793;Parent=[0-9a-f]{16};Sampled=1$/;

/** Runs `work` with `vars` in process.env (`undefined` deletes), then puts the environment back. */
export async function withEnvironment(vars: Record<string, string | undefined>, work: () => Promise<void>): Promise<void> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const apply = (values: Record<string, string | undefined>) => {
    for (const [k, v] of Object.entries(values)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
  apply(vars);
  try {
    await work();
  } finally {
    apply(saved);
  }
}
