/**
 * What every small AWS client of the route bundles shares, on `node:crypto` and `node:http(s)` alone:
 * SigV4 (header signing and presigned URLs), the function's own credentials, the SDK's standard retry
 * mode, this project's timeouts, and the middleware stack X-Ray's instrumentation hooks into. The protocols
 * sit on top: JSON (KMS, Cognito, SQS: aws-json.ts), REST-XML (S3: aws-s3.ts) and Query (STS: aws-sts.ts).
 * The SDK's clients for those services cost ~180 KiB (JSON) and ~300 KiB (S3, STS and the presigner) of
 * minified code per bundle (`@smithy/core`'s schema serde, event streams, endpoint rules, the retry,
 * checksum and signing stacks, an XML parser) and most of a route's import time, for a handful of
 * operations.
 *
 * It does what the SDK client does for these calls; unit tests prove it against the SDK itself
 * (test/unit/aws-json.test.ts, test/unit/aws-s3.test.ts):
 *  - SigV4 header signing (the SDK's own request, re-signed here, gets the SDK's signature byte for byte;
 *    both sign `x-amz-content-sha256` and the session token) and query presigning (the presigner's URL);
 *  - credentials: the environment only (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) by
 *    default, read once and kept until AWS_CREDENTIAL_EXPIRATION, as the Lambda bundles' SDK clients did
 *    (env-credential-provider.ts); missing ones are a `CredentialsProviderError` with the SDK's message.
 *    A client given credentials (a tenant's scoped STS session) signs with those alone, never others;
 *  - errors: `name` is the service's error code, `message`, `$fault`, and `$metadata` (httpStatusCode,
 *    requestId, extendedRequestId, attempts, totalRetryDelay), parsed by the protocol;
 *  - retries: the SDK's standard mode: throttling (base 1 s) and transient errors (base 50 ms: timeouts,
 *    socket errors, 500/502/503/504) are retried with full-jitter exponential backoff up to
 *    `maxAttempts`, against a per-client retry budget of 500 (14 per retry, 5 per throttling retry);
 *  - timeouts (aws-timeouts.ts): `connectionTimeout` for the socket to connect, `requestTimeout` for the
 *    whole answer; both reject with `name: 'TimeoutError'`;
 *  - X-Ray: `middlewareStack` and `config.region()` take the X-Ray middleware that `captureClient()`
 *    installs (observability.ts, xray.ts; and the X-Ray SDK's own v3 middleware, the reference it is
 *    tested against), so each call is a subsegment named after the service with the same `aws` and
 *    `http` attributes and a trace header on the request.
 * Not done (no caller needs it): clock-skew correction, `x-amz-retry-after` hints, FIPS / dual-stack
 * endpoints, streaming bodies (a request's and an answer's bytes are held in memory whole).
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

/** What a service's client factory (KMS, Cognito, SQS, S3, STS) takes from its caller. */
export interface AwsServiceOptions {
  readonly region: string;
  readonly endpoint?: string;
  readonly credentials?: AwsCredentialIdentity;
  readonly maxAttempts?: number;
}

export interface RequestHandlerOptions {
  readonly connectionTimeout?: number;
  readonly requestTimeout?: number;
  readonly throwOnRequestTimeout?: boolean;
}

export interface AwsClientOptions {
  /** The protocol's name in the user agent (`aws-json`). */
  readonly protocol: string;
  /** The SDK's client class name (`KMSClient`): X-Ray names the subsegment after it, without `Client`. */
  readonly clientName: string;
  /** SigV4 service name (`kms`, `s3`, `sts`). */
  readonly signingName: string;
  /** Host prefix of the regional endpoint; defaults to `signingName`. */
  readonly endpointPrefix?: string;
  readonly region: string;
  /** An emulator's endpoint; unset in AWS. */
  readonly endpoint?: string;
  /** @default the environment only */
  readonly credentials?: AwsCredentialIdentity | CredentialProvider;
  /** @default 3, as the SDK */
  readonly maxAttempts?: number;
  readonly requestHandler?: RequestHandlerOptions;
}

/** What a call answers: the service's output and the SDK's `$metadata`. */
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

/** `aws.protocoltests#FooError:http://…` → `FooError`, as the SDK's `sanitizeErrorCode`. */
export function sanitizeErrorCode(raw: string): string {
  let code = raw;
  if (code.includes(',')) code = code.split(',')[0]!;
  if (code.includes(':')) code = code.split(':')[0]!;
  if (code.includes('#')) code = code.split('#')[1]!;
  return code;
}

// ---------------------------------------------------------------------------------------------------
// SigV4.

const ALGORITHM = 'AWS4-HMAC-SHA256';
/** Headers SigV4 never signs (the SDK's ALWAYS_UNSIGNABLE_HEADERS and its `proxy-` / `sec-` patterns). */
const UNSIGNABLE = new Set([
  'authorization', 'cache-control', 'connection', 'expect', 'from', 'keep-alive', 'max-forwards', 'pragma', 'referer', 'te',
  'trailer', 'transfer-encoding', 'upgrade', 'user-agent', 'x-amzn-trace-id',
]);

export interface RequestToSign {
  readonly method: string;
  /** The path as sent (already URI-encoded); S3's and the other services' canonical path alike. */
  readonly path: string;
  /** The query's parameters, decoded. */
  readonly query?: Readonly<Record<string, string>>;
  /** Every header of the request, `host` included; names in any case. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string | Uint8Array;
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/** `20260101T120000Z` of a date, in UTC. */
export function amzDate(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

/** RFC 3986 encoding of a path segment or query part, as the SDK's `escapeUri` / `extendedEncodeURIComponent`. */
export function escapeUri(value: string): string {
  return /^[\w.~-]+$/.test(value) ? value : encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** `a=1&b=` of a query, keys sorted: the canonical form, and the order the SDK sends. */
export function queryString(query: Readonly<Record<string, string>>, skip?: string): string {
  return Object.keys(query)
    .filter((key) => key.toLowerCase() !== skip)
    .sort()
    .map((key) => `${escapeUri(key)}=${escapeUri(query[key]!)}`)
    .join('&');
}

function signableHeaders(headers: Readonly<Record<string, string>>, alsoSign?: ReadonlySet<string>): Map<string, string> {
  const signable = new Map<string, string>();
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if ((UNSIGNABLE.has(lower) || lower.startsWith('proxy-') || lower.startsWith('sec-')) && !alsoSign?.has(lower)) continue;
    signable.set(lower, value.trim().replace(/\s+/g, ' '));
  }
  return signable;
}

/** The signature of a canonical request (the `SignedHeaders`, the scope and the hex signature). */
function sign(
  request: { method: string; path: string; query: string; headers: Map<string, string>; payloadHash: string },
  credentials: AwsCredentialIdentity,
  long: string,
  region: string,
  service: string,
): { scope: string; signedHeaders: string; signature: string } {
  const short = long.slice(0, 8);
  const names = [...request.headers.keys()].sort();
  const canonical = [
    request.method,
    request.path,
    request.query,
    ...names.map((n) => `${n}:${request.headers.get(n)}`),
    '',
    names.join(';'),
    request.payloadHash,
  ].join('\n');
  const scope = `${short}/${region}/${service}/aws4_request`;
  const toSign = [ALGORITHM, long, scope, sha256Hex(canonical)].join('\n');
  let key = hmac(`AWS4${credentials.secretAccessKey}`, short);
  for (const part of [region, service, 'aws4_request']) key = hmac(key, part);
  return { scope, signedHeaders: names.join(';'), signature: createHmac('sha256', key).update(toSign, 'utf8').digest('hex') };
}

/**
 * The `authorization` header of a request whose `x-amz-date` (and, with a session token,
 * `x-amz-security-token`) headers are already set: SigV4 over every signable header, the body's
 * SHA-256 (or `x-amz-content-sha256`) as the payload hash. Pure: a test re-signs the SDK's own requests with it.
 */
export function signatureOf(request: RequestToSign, credentials: AwsCredentialIdentity, region: string, service: string): string {
  const headers = signableHeaders(request.headers);
  const long = headers.get('x-amz-date');
  if (!long) throw new Error('sign a request with its x-amz-date header set');
  const { scope, signedHeaders, signature } = sign(
    { method: request.method, path: request.path, query: queryString(request.query ?? {}), headers, payloadHash: headers.get('x-amz-content-sha256') ?? sha256Hex(request.body) },
    credentials,
    long,
    region,
    service,
  );
  return `${ALGORITHM} Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
}

export interface PresignOptions {
  readonly expiresIn: number;
  readonly signingDate: Date;
  /** Headers signed although SigV4 would leave them out (the S3 presigner's `signableHeaders`). */
  readonly signableHeaders?: ReadonlySet<string>;
  /** Headers left unsigned although SigV4 would sign them (the S3 presigner leaves `content-type` out). */
  readonly unsignableHeaders?: ReadonlySet<string>;
}

/**
 * The query of a presigned request, `X-Amz-Signature` included, as the SDK's `SignatureV4.presign`
 * gives it: `x-amz-*` headers move to the query, the other signable headers (and `host`) are signed, the
 * payload is `UNSIGNED-PAYLOAD`.
 */
export function presignedQuery(
  request: Omit<RequestToSign, 'body'>,
  credentials: AwsCredentialIdentity,
  region: string,
  service: string,
  options: PresignOptions,
): Record<string, string> {
  const long = amzDate(options.signingDate);
  const query: Record<string, string> = { ...request.query };
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    const lower = name.toLowerCase();
    if (lower.startsWith('x-amz-') && !options.signableHeaders?.has(lower)) query[name] = value;
    else if (!options.unsignableHeaders?.has(lower) || options.signableHeaders?.has(lower)) headers[lower] = value;
  }
  const signed = signableHeaders(headers, options.signableHeaders);
  const scope = `${long.slice(0, 8)}/${region}/${service}/aws4_request`;
  Object.assign(query, {
    'X-Amz-Algorithm': ALGORITHM,
    'X-Amz-Credential': `${credentials.accessKeyId}/${scope}`,
    'X-Amz-Date': long,
    'X-Amz-Expires': String(options.expiresIn),
    ...(credentials.sessionToken && { 'X-Amz-Security-Token': credentials.sessionToken }),
    'X-Amz-SignedHeaders': [...signed.keys()].sort().join(';'),
  });
  const payloadHash = query['X-Amz-Content-Sha256'] ?? 'UNSIGNED-PAYLOAD';
  const { signature } = sign({ method: request.method, path: request.path, query: queryString(query, 'x-amz-signature'), headers: signed, payloadHash }, credentials, long, region, service);
  query['X-Amz-Signature'] = signature;
  return query;
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
  /** The serialized request's body (what the SDK's `build` step sees), and headers added to every attempt. */
  readonly request: { readonly headers: Record<string, string>; readonly body?: string | Uint8Array };
}

export interface MiddlewareResult {
  readonly output: Output<object>;
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

  add(middleware: Middleware, options: { step?: string; name?: string; priority?: string } = {}): void {
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

/** One request as a protocol serialized it. */
export interface HttpRequest {
  readonly method: string;
  /** `host[:port]`; @default the client's endpoint's */
  readonly host?: string;
  /** URI-encoded. */
  readonly path: string;
  readonly query?: Readonly<Record<string, string>>;
  /** The protocol's headers (content type, target, checksums, …); the client adds host, date, token, signature. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string | Uint8Array;
}

export interface HttpResponse {
  readonly statusCode: number;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

/** Reads a 2xx answer into the operation's output; throws the service's error otherwise. */
export type ResponseParser<O> = (response: HttpResponse, metadata: ResponseMetadata) => O;

/** `$metadata` of an answer, from the headers every AWS protocol uses. */
function metadataOf(response: HttpResponse): ResponseMetadata {
  const headers = response.headers;
  return {
    httpStatusCode: response.statusCode,
    requestId: headers['x-amzn-requestid'] ?? headers['x-amzn-request-id'] ?? headers['x-amz-request-id'],
    extendedRequestId: headers['x-amz-id-2'],
    cfId: headers['x-amz-cf-id'],
  };
}

/**
 * A client of one service: the protocol serializes each call into an {@link HttpRequest} and reads the
 * answer with a {@link ResponseParser}; this signs, sends, retries and times it, behind the middleware stack.
 */
export class AwsClient {
  readonly middlewareStack = new MiddlewareStack();
  /** What X-Ray's instrumentation reads (`await client.config.region()`). */
  readonly config: { readonly region: () => Promise<string> };
  readonly region: string;
  readonly signingName: string;
  /** The service's endpoint (an emulator's, or the regional one). */
  readonly endpoint: URL;
  /** Whether the endpoint was configured (an emulator) rather than resolved. */
  readonly customEndpoint: boolean;
  readonly #clientName: string;
  readonly #userAgent: string;
  readonly #credentials: CredentialProvider;
  readonly #agent: http.Agent;
  readonly #maxAttempts: number;
  readonly #requestHandler: RequestHandlerOptions;
  #capacity = RETRY_CAPACITY;

  constructor(options: AwsClientOptions) {
    this.#clientName = options.clientName;
    this.signingName = options.signingName;
    this.#userAgent = `tenant-sovereign-backend ${options.protocol} lang/js md/nodejs#${process.versions.node} api/${options.signingName}`;
    const region = options.region;
    this.region = region;
    this.config = { region: async () => region };
    this.customEndpoint = options.endpoint !== undefined;
    this.endpoint = new URL(options.endpoint ?? regionalEndpoint(options.endpointPrefix ?? options.signingName, region));
    const credentials = options.credentials ?? fromEnvironment;
    this.#credentials = memoize(typeof credentials === 'function' ? credentials : async () => credentials);
    const secure = this.endpoint.protocol === 'https:';
    this.#agent = secure ? new https.Agent({ keepAlive: true, maxSockets: 50 }) : new http.Agent({ keepAlive: true, maxSockets: 50 });
    this.#maxAttempts = options.maxAttempts ?? 3;
    this.#requestHandler = options.requestHandler ?? {};
  }

  /** The credentials this client signs with. */
  credentials(): Promise<AwsCredentialIdentity> {
    return this.#credentials();
  }

  /** Closes the kept-alive sockets (the SDK's `destroy()`). */
  destroy(): void {
    this.#agent.destroy();
  }

  /**
   * Sends `operation` (`GetObject`) through the middleware stack, retrying as the SDK does; answers what
   * `parse` reads from the answer with the SDK's `$metadata`.
   */
  protected async invoke<O extends object>(operation: string, input: object, request: HttpRequest, parse: ResponseParser<O>): Promise<Output<O>> {
    const context = { clientName: this.#clientName, commandName: `${operation}Command` };
    const handler = this.middlewareStack.resolve((args) => this.#withRetries(request, args, parse), context);
    // The user agent is set before the middleware, as the SDK's user-agent middleware does, so that
    // Powertools' middleware appends its feature to it.
    const { output } = await handler({ input, request: { headers: { 'user-agent': this.#userAgent }, body: request.body } });
    return output as Output<O>;
  }

  async #withRetries<O extends object>(request: HttpRequest, args: MiddlewareArgs, parse: ResponseParser<O>): Promise<MiddlewareResult> {
    let attempts = 0;
    let totalRetryDelay = 0;
    let lastCost: number | undefined;
    for (;;) {
      attempts++;
      try {
        const result = await this.#attempt(request, args, parse);
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

  async #attempt<O extends object>(request: HttpRequest, args: MiddlewareArgs, parse: ResponseParser<O>): Promise<MiddlewareResult> {
    const credentials = await this.#credentials();
    const body = typeof request.body === 'string' ? Buffer.from(request.body, 'utf8') : request.body;
    const headers: Record<string, string> = {
      ...request.headers,
      'content-length': String(body.length),
      host: request.host ?? this.endpoint.host,
      'x-amz-date': amzDate(new Date()),
      ...(credentials.sessionToken && { 'x-amz-security-token': credentials.sessionToken }),
      'x-amz-content-sha256': sha256Hex(body),
      ...args.request.headers,
    };
    // A body-less GET carries no content-length, as the SDK's request has none.
    if (request.method === 'GET' && body.length === 0) delete headers['content-length'];
    headers.authorization = signatureOf({ method: request.method, path: request.path, query: request.query, headers, body }, credentials, this.region, this.signingName);
    const query = request.query === undefined ? '' : queryString(request.query);
    const response = await this.#send(request.method, headers.host!, query === '' ? request.path : `${request.path}?${query}`, headers, body);
    const metadata = metadataOf(response);
    return { output: Object.assign(parse(response, metadata), { $metadata: metadata }), response: { statusCode: response.statusCode, headers: response.headers } };
  }

  #send(method: string, host: string, path: string, headers: Record<string, string>, body: Uint8Array): Promise<HttpResponse> {
    const { connectionTimeout = 0, requestTimeout = 0, throwOnRequestTimeout = false } = this.#requestHandler;
    const url = new URL(`${this.endpoint.protocol}//${host}`);
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
        { protocol: url.protocol, hostname: url.hostname, port: url.port || undefined, method, path, headers, agent: this.#agent },
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
