/**
 * A small client for AWS's JSON protocols (awsJson1_0, awsJson1_1), on `node:crypto` and `node:http(s)`
 * alone: what KMS, Cognito and SQS are called with from the route bundles. The SDK's clients for those
 * three services cost ~180 KiB of minified code per bundle (`@smithy/core`'s schema serde, event streams,
 * endpoint rules, the retry and signing stacks) and most of a route's import time, for a handful of
 * operations that each post one JSON document.
 *
 * It does what the SDK client does for these calls; a unit test proves it against the SDK itself
 * (test/unit/aws-json.test.ts):
 *  - the request: `POST /`, `content-type: application/x-amz-json-1.x`, `x-amz-target`, the JSON body, and
 *    SigV4 header signing (the SDK's own request, re-signed here, gets the SDK's signature byte for byte;
 *    both sign `x-amz-content-sha256` and the session token);
 *  - the endpoint: `https://{prefix}.{region}.amazonaws.com` (`.amazonaws.com.cn` in China), or the
 *    configured one (the emulator);
 *  - credentials: the environment only (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), read
 *    once and kept until AWS_CREDENTIAL_EXPIRATION, as the Lambda bundles' SDK clients do
 *    (env-credential-provider.ts); missing ones are a `CredentialsProviderError` with the SDK's message;
 *  - errors: `name` is the service's error code (`__type` or `x-amzn-errortype`, namespace stripped),
 *    `message`, `$fault`, and `$metadata` (httpStatusCode, requestId, attempts, totalRetryDelay);
 *  - retries: the SDK's standard mode: throttling (base 1 s) and transient errors (base 50 ms: timeouts,
 *    socket errors, 500/502/503/504) are retried with full-jitter exponential backoff up to
 *    `maxAttempts`, against a per-client retry budget of 500 (14 per retry, 5 per throttling retry);
 *  - timeouts (aws-timeouts.ts): `connectionTimeout` for the socket to connect, `requestTimeout` for the
 *    whole answer; both reject with `name: 'TimeoutError'`;
 *  - X-Ray: `middlewareStack` and `config.region()` take the X-Ray SDK's own v3 middleware as
 *    `captureClient()` installs it (observability.ts), so each call is a subsegment named after the
 *    service with the same `aws` and `http` attributes and a trace header on the request.
 * Not done (no caller needs it): clock-skew correction, `x-amz-retry-after` hints, FIPS / dual-stack
 * endpoints, and any operation whose input or output is not plain JSON (blobs are base64 strings to the
 * caller; see pii.ts).
 */
import { createHash, createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { environmentCredentials } from './config';

/** Credentials as the SDK's providers return them. */
export interface AwsCredentialIdentity {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
  readonly expiration?: Date;
}

export type CredentialProvider = () => Promise<AwsCredentialIdentity>;

/** What a service's client factory (KMS, Cognito, SQS) takes from its caller. */
export interface AwsServiceOptions {
  readonly region: string;
  readonly endpoint?: string;
  readonly credentials?: AwsCredentialIdentity;
  readonly maxAttempts?: number;
}

export interface AwsJsonClientOptions {
  /** The SDK's client class name (`KMSClient`): X-Ray names the subsegment after it, without `Client`. */
  readonly clientName: string;
  /** SigV4 service name (`kms`, `cognito-idp`, `sqs`). */
  readonly signingName: string;
  /** Host prefix of the regional endpoint; defaults to `signingName`. */
  readonly endpointPrefix?: string;
  /** `x-amz-target` prefix (`TrentService`). */
  readonly targetPrefix: string;
  readonly jsonVersion: '1.0' | '1.1';
  /** Headers every request of this service carries (SQS: `x-amzn-query-mode`). */
  readonly headers?: Readonly<Record<string, string>>;
  readonly region: string;
  /** An emulator's endpoint; unset in AWS. */
  readonly endpoint?: string;
  /** @default the environment only */
  readonly credentials?: AwsCredentialIdentity | CredentialProvider;
  /** @default 3, as the SDK */
  readonly maxAttempts?: number;
  readonly requestHandler?: { readonly connectionTimeout?: number; readonly requestTimeout?: number; readonly throwOnRequestTimeout?: boolean };
}

/** What a call answers: the service's JSON output and the SDK's `$metadata`. */
export type Output<T> = T & { readonly $metadata: ResponseMetadata };

export interface ResponseMetadata {
  httpStatusCode?: number;
  requestId?: string;
  extendedRequestId?: string;
  cfId?: string;
  attempts?: number;
  totalRetryDelay?: number;
}

/** An error the service answered with, shaped as the SDK's service exceptions are. */
export class AwsServiceError extends Error {
  readonly $fault: 'client' | 'server';
  $metadata: ResponseMetadata;
  constructor(name: string, message: string, fault: 'client' | 'server', metadata: ResponseMetadata) {
    super(message);
    this.name = name;
    this.$fault = fault;
    this.$metadata = metadata;
  }
}

// ---------------------------------------------------------------------------------------------------
// SigV4 header signing.

const ALGORITHM = 'AWS4-HMAC-SHA256';
/** Headers SigV4 never signs (the SDK's ALWAYS_UNSIGNABLE_HEADERS and its `proxy-` / `sec-` patterns). */
const UNSIGNABLE = new Set([
  'authorization', 'cache-control', 'connection', 'expect', 'from', 'keep-alive', 'max-forwards', 'pragma', 'referer', 'te',
  'trailer', 'transfer-encoding', 'upgrade', 'user-agent', 'x-amzn-trace-id',
]);

export interface RequestToSign {
  readonly method: string;
  readonly path: string;
  /** Every header of the request, `host` included; names in any case. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string | Uint8Array;
}

function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/** `20260101T120000Z` of a date, in UTC. */
export function amzDate(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

/**
 * The `authorization` header of a request whose `x-amz-date` (and, with a session token,
 * `x-amz-security-token`) headers are already set: SigV4 over every signable header, the body's
 * SHA-256 as the payload hash. Pure: a test re-signs the SDK's own requests with it.
 */
export function signatureOf(request: RequestToSign, credentials: AwsCredentialIdentity, region: string, service: string): string {
  const headers = new Map<string, string>();
  for (const [name, value] of Object.entries(request.headers)) {
    const lower = name.toLowerCase();
    if (UNSIGNABLE.has(lower) || lower.startsWith('proxy-') || lower.startsWith('sec-')) continue;
    headers.set(lower, value.trim().replace(/\s+/g, ' '));
  }
  const long = headers.get('x-amz-date');
  if (!long) throw new Error('sign a request with its x-amz-date header set');
  const short = long.slice(0, 8);
  const names = [...headers.keys()].sort();
  const payloadHash = headers.get('x-amz-content-sha256') ?? sha256Hex(request.body);
  const canonical = [
    request.method,
    request.path,
    '',
    ...names.map((n) => `${n}:${headers.get(n)}`),
    '',
    names.join(';'),
    payloadHash,
  ].join('\n');
  const scope = `${short}/${region}/${service}/aws4_request`;
  const toSign = [ALGORITHM, long, scope, sha256Hex(canonical)].join('\n');
  let key = hmac(`AWS4${credentials.secretAccessKey}`, short);
  for (const part of [region, service, 'aws4_request']) key = hmac(key, part);
  const signature = createHmac('sha256', key).update(toSign, 'utf8').digest('hex');
  return `${ALGORITHM} Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`;
}

// ---------------------------------------------------------------------------------------------------
// Credentials.

/** The environment link of the SDK's chain (`fromEnv`), with its error name and message. */
export const fromEnvironment: CredentialProvider = async () => {
  const credentials = environmentCredentials();
  if (!credentials) {
    throw Object.assign(new Error('Unable to find environment variable credentials.'), { name: 'CredentialsProviderError', tryNextLink: true });
  }
  return credentials;
};

/** Keeps a provider's credentials until 5 minutes before they expire (the SDK's memoisation). */
function memoize(provider: CredentialProvider): CredentialProvider {
  let current: Promise<AwsCredentialIdentity> | undefined;
  return async () => {
    if (current) {
      const held = await current.catch(() => undefined);
      if (held && (held.expiration === undefined || held.expiration.getTime() - Date.now() > 300_000)) return held;
    }
    current = provider();
    current.catch(() => (current = undefined));
    return current;
  };
}

// ---------------------------------------------------------------------------------------------------
// Retries: the SDK's standard mode (@smithy/core retry, 2026 configuration).

const THROTTLING = new Set([
  'BandwidthLimitExceeded', 'EC2ThrottledException', 'LimitExceededException', 'PriorRequestNotComplete',
  'ProvisionedThroughputExceededException', 'RequestLimitExceeded', 'RequestThrottled', 'RequestThrottledException', 'SlowDown',
  'ThrottledException', 'Throttling', 'ThrottlingException', 'TooManyRequestsException', 'TransactionInProgressException',
]);
const TRANSIENT_NAMES = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException']);
const TRANSIENT_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
const TRANSIENT_STATUSES = new Set([500, 502, 503, 504]);
const RETRY_CAPACITY = 500;
const RETRY_COST = 14;
const THROTTLING_RETRY_COST = 5;
const BASE_DELAY_MS = 50;
const THROTTLING_BASE_DELAY_MS = 1_000;
const MAX_DELAY_MS = 20_000;

type Failure = Error & { code?: string; cause?: unknown; $metadata?: ResponseMetadata; $retryable?: { throttling?: boolean } };

export function isThrottling(error: Failure): boolean {
  return error.$metadata?.httpStatusCode === 429 || THROTTLING.has(error.name) || error.$retryable?.throttling === true;
}

export function isTransient(error: Failure, depth = 0): boolean {
  return (
    error.name !== 'AbortError' &&
    (error.$retryable !== undefined ||
      (error.name === 'InvalidSignatureException' && Boolean(error.message?.includes('Signature expired'))) ||
      TRANSIENT_NAMES.has(error.name) ||
      TRANSIENT_CODES.has(error.code ?? '') ||
      TRANSIENT_STATUSES.has(error.$metadata?.httpStatusCode ?? 0) ||
      (error.cause !== undefined && error.cause !== null && depth <= 10 && isTransient(error.cause as Failure, depth + 1)))
  );
}

// ---------------------------------------------------------------------------------------------------
// The middleware stack X-Ray's SDK v3 instrumentation adds itself to.

/** `(next, context) => (args) => …`, as the SDK's middleware; `args.request.headers` go on every attempt. */
export type Middleware = (
  next: (args: MiddlewareArgs) => Promise<MiddlewareResult>,
  context: { readonly clientName: string; readonly commandName: string },
) => (args: MiddlewareArgs) => Promise<MiddlewareResult>;

export interface MiddlewareArgs {
  readonly input: object;
  readonly request: { readonly headers: Record<string, string> };
}

export interface MiddlewareResult {
  readonly output: Output<Record<string, unknown>>;
  readonly response: { readonly statusCode: number; readonly headers: Record<string, string> };
}

/**
 * The subset of the SDK's middleware stack that X-Ray's instrumentation, Powertools' user-agent
 * middleware (added relative to the SDK's `getUserAgentMiddleware`, a `build` step) and a test counting
 * calls use. Every middleware runs around the whole call, retries included, as the SDK's `initialize`,
 * `serialize` and `build` steps do; later steps (per attempt) are refused rather than run in the wrong place.
 */
class MiddlewareStack {
  readonly #entries: { name?: string; step: string; middleware: Middleware }[] = [];

  add(middleware: Middleware, options: { step?: string; name?: string } = {}): void {
    const step = options.step ?? 'initialize';
    if (!['initialize', 'serialize', 'build'].includes(step)) throw new Error(`middleware step ${step} is not supported`);
    if (options.name !== undefined) this.remove(options.name);
    this.#entries.push({ name: options.name, step, middleware });
  }

  /** Only relative to the user-agent middleware, which this client has in the `build` step as the SDK does. */
  addRelativeTo(middleware: Middleware, options: { name?: string; relation?: string; toMiddleware?: string }): void {
    if (options.toMiddleware !== 'getUserAgentMiddleware') throw new Error(`middleware relative to ${options.toMiddleware} is not supported`);
    this.add(middleware, { step: 'build', name: options.name });
  }

  /** Names and steps, as the SDK's `identify()` lists them (`name - step`). */
  identify(): string[] {
    return this.#entries.map((e) => `${e.name ?? 'anonymous'} - ${e.step}`);
  }

  use(plugin: { applyToStack(stack: MiddlewareStack): void }): void {
    plugin.applyToStack(this);
  }

  remove(name: string): boolean {
    const at = this.#entries.findIndex((e) => e.name === name);
    if (at !== -1) this.#entries.splice(at, 1);
    return at !== -1;
  }

  resolve(
    handler: (args: MiddlewareArgs) => Promise<MiddlewareResult>,
    context: { clientName: string; commandName: string },
  ): (args: MiddlewareArgs) => Promise<MiddlewareResult> {
    // The first added is the outermost, as in the SDK's stack within one step.
    return this.#entries.reduceRight((next, entry) => entry.middleware(next, context), handler);
  }
}

// ---------------------------------------------------------------------------------------------------
// The client.

/** The regional endpoint of a service, as the SDK's endpoint rules give it for the aws and aws-cn partitions. */
export function regionalEndpoint(prefix: string, region: string): string {
  return `https://${prefix}.${region}.${region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com'}`;
}

export class AwsJsonClient {
  readonly middlewareStack = new MiddlewareStack();
  /** What X-Ray's instrumentation reads (`await client.config.region()`). */
  readonly config: { readonly region: () => Promise<string> };
  readonly #options: AwsJsonClientOptions;
  readonly #url: URL;
  readonly #credentials: CredentialProvider;
  readonly #agent: http.Agent;
  readonly #maxAttempts: number;
  #capacity = RETRY_CAPACITY;

  constructor(options: AwsJsonClientOptions) {
    this.#options = options;
    const region = options.region;
    this.config = { region: async () => region };
    this.#url = new URL(options.endpoint ?? regionalEndpoint(options.endpointPrefix ?? options.signingName, region));
    const credentials = options.credentials ?? fromEnvironment;
    this.#credentials = memoize(typeof credentials === 'function' ? credentials : async () => credentials);
    const secure = this.#url.protocol === 'https:';
    this.#agent = secure ? new https.Agent({ keepAlive: true, maxSockets: 50 }) : new http.Agent({ keepAlive: true, maxSockets: 50 });
    this.#maxAttempts = options.maxAttempts ?? 3;
  }

  /** Calls `operation` (`Decrypt`) with `input`; rejects with the service's error as the SDK would. */
  async call<O extends object = Record<string, unknown>>(operation: string, input: object): Promise<Output<O>> {
    const context = { clientName: this.#options.clientName, commandName: `${operation}Command` };
    const handler = this.middlewareStack.resolve((args) => this.#withRetries(operation, args), context);
    // The user agent is set before the middleware, as the SDK's user-agent middleware does, so that
    // Powertools' middleware appends its feature to it.
    const { output } = await handler({ input, request: { headers: { 'user-agent': this.#userAgent } } });
    return output as Output<O>;
  }

  /** `send({ operation, input })`: the SDK's method name, so that tools that check for an SDK client find one. */
  send<O extends object = Record<string, unknown>>(command: { readonly operation: string; readonly input: object }): Promise<Output<O>> {
    return this.call<O>(command.operation, command.input);
  }

  get #userAgent(): string {
    return `tenant-sovereign-backend aws-json lang/js md/nodejs#${process.versions.node} api/${this.#options.signingName}`;
  }

  /** Closes the kept-alive sockets (the SDK's `destroy()`). */
  destroy(): void {
    this.#agent.destroy();
  }

  async #withRetries(operation: string, args: MiddlewareArgs): Promise<MiddlewareResult> {
    let attempts = 0;
    let totalRetryDelay = 0;
    let lastCost: number | undefined;
    for (;;) {
      attempts++;
      try {
        const result = await this.#attempt(operation, args);
        Object.assign(result.output.$metadata, { attempts, totalRetryDelay });
        this.#capacity = Math.min(RETRY_CAPACITY, this.#capacity + (lastCost ?? 1));
        return result;
      } catch (caught) {
        const error = (caught instanceof Error ? caught : new Error(String(caught))) as Failure;
        const throttling = isThrottling(error);
        const cost = throttling ? THROTTLING_RETRY_COST : RETRY_COST;
        if ((throttling || isTransient(error)) && attempts < this.#maxAttempts && this.#capacity >= cost) {
          this.#capacity -= cost;
          lastCost = cost;
          const base = throttling ? THROTTLING_BASE_DELAY_MS : BASE_DELAY_MS;
          const delay = Math.floor(Math.random() * Math.min(base * 2 ** (attempts - 1), MAX_DELAY_MS));
          totalRetryDelay += delay;
          await new Promise((resolve) => setTimeout(resolve, delay));
          continue;
        }
        error.$metadata = { ...error.$metadata, attempts, totalRetryDelay };
        throw error;
      }
    }
  }

  async #attempt(operation: string, args: MiddlewareArgs): Promise<MiddlewareResult> {
    const options = this.#options;
    const credentials = await this.#credentials();
    const body = Buffer.from(JSON.stringify(args.input), 'utf8');
    const host = this.#url.host;
    const path = this.#url.pathname || '/';
    const headers: Record<string, string> = {
      'content-type': `application/x-amz-json-${options.jsonVersion}`,
      'x-amz-target': `${options.targetPrefix}.${operation}`,
      ...options.headers,
      'content-length': String(body.length),
      host,
      'x-amz-date': amzDate(new Date()),
      ...(credentials.sessionToken && { 'x-amz-security-token': credentials.sessionToken }),
      'x-amz-content-sha256': sha256Hex(body),
      ...args.request.headers,
    };
    headers.authorization = signatureOf({ method: 'POST', path, headers, body }, credentials, options.region, options.signingName);
    const response = await this.#send(path, headers, body);
    const metadata: ResponseMetadata = {
      httpStatusCode: response.statusCode,
      requestId: response.headers['x-amzn-requestid'] ?? response.headers['x-amzn-request-id'] ?? response.headers['x-amz-request-id'],
      extendedRequestId: response.headers['x-amz-id-2'],
      cfId: response.headers['x-amz-cf-id'],
    };
    const text = response.body.toString('utf8');
    if (response.statusCode >= 200 && response.statusCode < 300) {
      const parsed = text.trim() === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
      return { output: Object.assign(parsed, { $metadata: metadata }), response: { statusCode: response.statusCode, headers: response.headers } };
    }
    throw serviceError(response.statusCode, response.headers, text, metadata);
  }

  #send(path: string, headers: Record<string, string>, body: Buffer): Promise<{ statusCode: number; headers: Record<string, string>; body: Buffer }> {
    const { connectionTimeout = 0, requestTimeout = 0, throwOnRequestTimeout = false } = this.#options.requestHandler ?? {};
    const url = this.#url;
    const transport = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const timers: NodeJS.Timeout[] = [];
      const done = <A extends unknown[]>(fn: (...a: A) => void) => (...a: A) => {
        for (const t of timers) clearTimeout(t);
        fn(...a);
      };
      const ok = done(resolve);
      const fail = done(reject);
      const request = transport.request(
        { protocol: url.protocol, hostname: url.hostname, port: url.port || undefined, method: 'POST', path, headers, agent: this.#agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.once('error', fail);
          res.once('end', () => {
            const flat: Record<string, string> = {};
            for (const [name, value] of Object.entries(res.headers)) if (value !== undefined) flat[name] = Array.isArray(value) ? value.join(', ') : value;
            ok({ statusCode: res.statusCode ?? 0, headers: flat, body: Buffer.concat(chunks) });
          });
        },
      );
      request.once('error', fail);
      if (connectionTimeout > 0) {
        const timer = setTimeout(() => {
          request.destroy();
          fail(Object.assign(new Error(`the request socket did not establish a connection with the server within the configured timeout of ${connectionTimeout} ms.`), { name: 'TimeoutError' }));
        }, connectionTimeout);
        timers.push(timer);
        request.once('socket', (socket) => {
          if (socket.connecting) socket.once('connect', () => clearTimeout(timer));
          else clearTimeout(timer);
        });
      }
      if (requestTimeout > 0 && throwOnRequestTimeout) {
        timers.push(
          setTimeout(() => {
            const error = Object.assign(new Error(`a request has exceeded the configured ${requestTimeout} ms requestTimeout.`), { name: 'TimeoutError', code: 'ETIMEDOUT' });
            request.destroy(error);
            fail(error);
          }, requestTimeout),
        );
      }
      request.end(body);
    });
  }
}

/** The SDK's awsJson error parsing: the code from `x-amzn-errortype` or the body's `__type` / `code`. */
function serviceError(status: number, headers: Record<string, string>, text: string, metadata: ResponseMetadata): AwsServiceError {
  let body: Record<string, unknown> = {};
  try {
    const parsed = text.trim() === '' ? {} : JSON.parse(text);
    if (parsed && typeof parsed === 'object') body = parsed as Record<string, unknown>;
  } catch {
    // Not JSON (a proxy's page): the status alone names it.
  }
  const raw = headers['x-amzn-errortype'] ?? (typeof body.__type === 'string' ? body.__type : undefined) ?? (typeof body.code === 'string' ? body.code : undefined);
  const name = raw === undefined ? 'UnknownError' : sanitizeErrorCode(raw);
  const message = typeof body.message === 'string' ? body.message : typeof body.Message === 'string' ? body.Message : name;
  return new AwsServiceError(name, message, status >= 500 ? 'server' : 'client', metadata);
}

/** `aws.protocoltests#FooError:http://…` → `FooError`, as the SDK's `sanitizeErrorCode`. */
export function sanitizeErrorCode(raw: string): string {
  let code = raw;
  if (code.includes(',')) code = code.split(',')[0]!;
  if (code.includes(':')) code = code.split(':')[0]!;
  if (code.includes('#')) code = code.split('#')[1]!;
  return code;
}
