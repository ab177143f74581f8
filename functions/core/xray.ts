/**
 * X-Ray subsegments of a Lambda invocation, sent to the X-Ray daemon over UDP: the part of the X-Ray SDK
 * (aws-xray-sdk-core, as Powertools' tracer drives it) that these functions use, producing the same
 * documents. The SDK costs ~93 KiB of every route bundle, ~5 ms of its import, and per subsegment a
 * `crypto.randomBytes` call for its id, a re-read of the trace header, a copy of the subsegment and one
 * datagram; here ids come from a pooled random buffer and a request's subsegments leave in one datagram.
 *
 * - The parent: Lambda's facade segment, named by the trace header Lambda sets per invocation
 *   (`Root=…;Parent=…;Sampled=0|1[;Lineage=…]`, config.ts's `lambdaTraceHeader()`). Without a header, or
 *   with `Sampled=0`, nothing is recorded or sent: the work just runs.
 * - The current subsegment is kept in AsyncLocalStorage, so requests served concurrently in one process
 *   never nest under each other.
 * - Documents: `id` (16 hex), `name`, `start_time`/`end_time` (epoch seconds), `annotations`, `namespace`,
 *   `aws`, `http`, `error`/`fault`/`throttle` and `cause` (working_directory and exceptions with message,
 *   type, stack frames) as the SDK's Subsegment formats them. A direct child of the facade carries
 *   `type: "subsegment"`, `trace_id` and `parent_id` and leaves, with every subsegment closed under it,
 *   in one datagram when it closes; one still open then is sent on its own when it closes, and a
 *   document over the UDP limit is split into its children.
 * - The daemon: `AWS_XRAY_DAEMON_ADDRESS` (`host:port` or `udp:host:port tcp:host:port`; default
 *   127.0.0.1:2000), one unref'd UDP socket, connected when the first traced request starts, so that each
 *   send is one synchronous system call before the handler returns; a failed send never fails or delays
 *   the request and is reported once.
 * - Nothing of a request's or a response's content is recorded: names, annotations the code sets, the
 *   `aws`/`http` attributes above, and errors' types, messages and stack frames.
 * - AWS clients (`captureAwsClient`): a middleware as the SDK's patchers/aws3_p.js adds, one subsegment
 *   per call named after the service, with its trace header on the request.
 * - Outgoing HTTP outside the AWS clients (`tracedFetch`): a `remote` subsegment named after the host, as
 *   the SDK's https patch or Powertools' fetch instrumentation gives.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomFillSync } from 'node:crypto';
import dgram from 'node:dgram';
import { epochSeconds } from './clock';

// ---------------------------------------------------------------------------------------------------
// Trace header and daemon address.

/** The facade segment of an invocation, as its trace header names it. */
export interface TraceHeader {
  /** `1-5f84c7a4-…` (24 hex after the time). */
  readonly root: string;
  /** The facade segment's id: the parent of the invocation's subsegments. */
  readonly parent: string;
  readonly sampled: boolean;
  /** Other fields (`Lineage=…`), passed on to the AWS calls' trace headers as the SDK does. */
  readonly extra: string;
}

/** Pure: the fields of a trace header; undefined without `Root` and `Parent`. */
export function parseTraceHeader(header: string | undefined): TraceHeader | undefined {
  if (!header) return undefined;
  let root: string | undefined;
  let parent: string | undefined;
  let sampled = false;
  let extra = '';
  for (const part of header.split(';')) {
    const at = part.indexOf('=');
    if (at === -1) continue;
    const key = part.slice(0, at).trim();
    const value = part.slice(at + 1).trim();
    if (key === 'Root') root = value;
    else if (key === 'Parent') parent = value;
    else if (key === 'Sampled') sampled = value === '1';
    else if (key !== '' && value !== '') extra += `;${key}=${value}`;
  }
  return root && parent ? { root, parent, sampled, extra } : undefined;
}

export interface DaemonAddress {
  readonly host: string;
  readonly port: number;
}

export const DEFAULT_DAEMON: DaemonAddress = { host: '127.0.0.1', port: 2000 };

/**
 * Pure: the UDP address in `AWS_XRAY_DAEMON_ADDRESS`, as the SDK's daemon_config.js reads it:
 * `host:port`, or `udp:host:port tcp:host:port` in either order. Throws on anything else.
 */
export function parseDaemonAddress(address: string | undefined): DaemonAddress {
  if (address === undefined || address.trim() === '') return DEFAULT_DAEMON;
  const parts = address.trim().split(/\s+/);
  const invalid = (why: string) => new Error(`Invalid X-Ray daemon address "${address}": ${why}`);
  let hostPort: string;
  if (parts.length === 1) {
    if (/^(udp|tcp):/.test(parts[0]!)) throw invalid('give both the udp and the tcp address');
    hostPort = parts[0]!;
  } else if (parts.length === 2) {
    const udp = parts.find((part) => part.startsWith('udp:'));
    if (!udp || !parts.some((part) => part.startsWith('tcp:'))) throw invalid('give both the udp and the tcp address');
    hostPort = udp.slice(4);
  } else {
    throw invalid('expected host:port or udp:host:port tcp:host:port');
  }
  const at = hostPort.lastIndexOf(':');
  const host = at > 0 ? hostPort.slice(0, at) : '';
  const port = at > 0 ? Number(hostPort.slice(at + 1)) : NaN;
  if (host === '') throw invalid('no host');
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalid('no port');
  return { host, port };
}

// ---------------------------------------------------------------------------------------------------
// Ids.

const ID_POOL_BYTES = 4096;
const idPool = Buffer.allocUnsafe(ID_POOL_BYTES);
let idOffset = ID_POOL_BYTES;

/** 16 hex digits from a pool of random bytes, refilled from the CSPRNG 512 ids at a time. */
export function newId(): string {
  if (idOffset + 8 > ID_POOL_BYTES) {
    randomFillSync(idPool);
    idOffset = 0;
  }
  const id = idPool.toString('hex', idOffset, idOffset + 8);
  idOffset += 8;
  return id;
}

/** A new trace id, `1-<epoch seconds, 8 hex>-<24 hex>`, as X-Ray's TraceID makes one (tests, local runs). */
export function newTraceId(now = Date.now()): string {
  return `1-${Math.floor(now / 1000).toString(16).padStart(8, '0')}-${newId()}${newId().slice(0, 8)}`;
}

// ---------------------------------------------------------------------------------------------------
// Documents.

export interface StackFrame {
  path: string;
  line: number;
  label: string;
}

export interface ExceptionDocument {
  message: string;
  type: string;
  stack: StackFrame[];
  remote: boolean;
  id: string;
}

/** A subsegment as it is sent; the SDK's field names. */
export interface SubsegmentDocument {
  id: string;
  name: string;
  start_time: number;
  /** Unset while open (a document is sent once closed). */
  end_time?: number;
  type?: 'subsegment';
  trace_id?: string;
  parent_id?: string;
  namespace?: 'aws' | 'remote';
  annotations?: Record<string, string | number | boolean>;
  aws?: Record<string, unknown>;
  http?: { request?: { url: string; method: string }; response?: { status?: number; content_length?: number } };
  error?: boolean;
  fault?: boolean;
  throttle?: boolean;
  cause?: { working_directory?: string; id?: string; exceptions: ExceptionDocument[] };
  subsegments?: SubsegmentDocument[];
}

/** Epoch seconds with sub-millisecond precision (the SDK: `Date.now() / 1000`). */
const now = epochSeconds;

/** The SDK's CapturedException: message, type (the error's name) and the stack's frames. */
export function capturedException(error: unknown, remote: boolean): ExceptionDocument {
  const e = typeof error === 'string' ? { message: error, name: '', stack: undefined } : (error as { message?: unknown; name?: unknown; stack?: unknown });
  const stack: StackFrame[] = [];
  if (typeof e.stack === 'string') {
    const lines = e.stack.split('\n');
    lines.shift();
    for (const stackLine of lines) {
      let line = stackLine.trim().replace(/\(|\)/g, '');
      line = line.substring(line.indexOf(' ') + 1);
      const space = line.lastIndexOf(' ');
      const label = space >= 0 ? line.slice(0, space) : null;
      const location = line.slice(space + 1).split(':');
      stack.push({ path: location[0]!, line: parseInt(location[1]!, 10), label: label || 'anonymous' });
    }
  }
  return { message: e.message as string, type: e.name as string, stack, remote, id: newId() };
}

// ---------------------------------------------------------------------------------------------------
// The current subsegment.

/** One invocation's trace: its header's fields and the error last recorded in it. */
interface Trace {
  readonly header: TraceHeader;
  /** As the SDK's segment.exception: an error recorded again higher up only points at the first record. */
  exception?: { readonly error: unknown; readonly cause: string };
}

/** An open subsegment and where it sits. */
export interface Open {
  readonly trace: Trace;
  readonly doc: SubsegmentDocument;
  /** The enclosing open subsegment; undefined for a direct child of the facade. */
  readonly parent: Open | undefined;
  /** Sent on its own when it closes: it was still open when its top-level subsegment left. */
  detached?: boolean;
}

const current = new AsyncLocalStorage<Open>();

let enabled: () => boolean = () => false;
let traceHeader: () => string | undefined = () => undefined;
let daemonAddress: () => string | undefined = () => undefined;
let report: (message: string, error?: unknown) => void = () => undefined;

/**
 * Where the emitter gets its settings (config.ts's accessors, passed by observability.ts so that this
 * module reads no environment) and reports its own problems (at most once each).
 */
export function configureXray(options: {
  readonly enabled: () => boolean;
  readonly traceHeader: () => string | undefined;
  readonly daemonAddress: () => string | undefined;
  readonly report?: (message: string, error?: unknown) => void;
}): void {
  enabled = options.enabled;
  traceHeader = options.traceHeader;
  daemonAddress = options.daemonAddress;
  report = options.report ?? report;
  daemon = undefined;
}

let lastHeader: string | undefined;
let lastTrace: Trace | undefined;

/** The invocation's trace from its header (parsed once per header), when tracing is on and sampled. */
function facadeTrace(): Trace | undefined {
  if (!enabled()) return undefined;
  const header = traceHeader();
  if (header !== lastHeader) {
    lastHeader = header;
    const parsed = parseTraceHeader(header);
    lastTrace = parsed?.sampled ? { header: parsed } : undefined;
  }
  return lastTrace;
}

/** Opens a subsegment under the current one (or the facade); undefined where nothing is recorded. */
export function openSubsegment(name: string): Open | undefined {
  const parent = current.getStore();
  const trace = parent?.trace ?? facadeTrace();
  if (!trace) return undefined;
  const doc: SubsegmentDocument = { id: newId(), name, start_time: now() };
  const open: Open = { trace, doc, parent };
  if (parent) {
    (parent.doc.subsegments ??= []).push(doc);
    openByDoc.set(doc, open);
  } else {
    doc.type = 'subsegment';
    doc.trace_id = trace.header.root;
    doc.parent_id = trace.header.parent;
    if (!daemon) socket(); // connects while the request runs
  }
  return open;
}

export function annotate(open: Open, key: string, value: string | number | boolean): void {
  if (typeof value === 'number' && !Number.isFinite(value)) return; // the SDK refuses it too
  (open.doc.annotations ??= {})[key] = value;
}

/** Records `error` as the SDK's addError does: a fault with the exception, or a pointer to where it was first recorded. */
export function addError(open: Open, error: unknown, remote = false): void {
  if (error === null || error === undefined || (typeof error !== 'object' && typeof error !== 'string')) return;
  const { doc, trace } = open;
  doc.fault = true;
  if (trace.exception) {
    if (trace.exception.error === error) {
      doc.cause = { id: trace.exception.cause, exceptions: [] };
      return;
    }
  }
  trace.exception = { error, cause: doc.id };
  doc.cause ??= { working_directory: process.cwd(), exceptions: [] };
  doc.cause.exceptions.unshift(capturedException(error, remote));
}

/** Closes a subsegment: a direct child of the facade (or a detached one) is sent with what closed under it. */
export function closeSubsegment(open: Open): void {
  const { doc } = open;
  doc.end_time = now();
  if (open.parent && !open.detached) return; // leaves with its top-level subsegment
  send(open);
}

// ---------------------------------------------------------------------------------------------------
// Sending.

const HEADER = '{"format":"json","version":1}\n';
/** The largest UDP payload over IPv4: 65,535 − 8 (UDP) − 20 (IP). */
export const MAX_DATAGRAM = 65_507;

/**
 * The daemon's socket, connected to its address: a connected send is one synchronous `sendmsg` when the
 * subsegment closes (no address lookup per send), so the datagram has left before the handler returns
 * and Lambda may freeze the process. Documents closed while it still connects wait in `pending`.
 */
interface Daemon {
  readonly socket: dgram.Socket;
  connected: boolean;
  pending: string[];
}

let daemon: Daemon | undefined;
/** Documents kept while the socket connects (the first request's, normally one). */
const MAX_PENDING = 64;
let reported = new Set<string>();

function reportOnce(kind: string, message: string, error?: unknown): void {
  if (reported.has(kind)) return;
  reported.add(kind);
  try {
    report(message, error);
  } catch {
    // reporting must never fail the request either
  }
}

/** The daemon's socket, created and connected on first use. */
function socket(): Daemon {
  if (daemon) return daemon;
  let address = DEFAULT_DAEMON;
  try {
    address = parseDaemonAddress(daemonAddress());
  } catch (error) {
    reportOnce('address', 'X-Ray daemon address not understood; using 127.0.0.1:2000', error);
  }
  const udp = dgram.createSocket(address.host.includes(':') ? 'udp6' : 'udp4');
  const created: Daemon = { socket: udp, connected: false, pending: [] };
  const fail = (error: unknown) => {
    if (daemon === created) daemon = undefined; // the next request tries a new socket
    reportOnce('socket', 'X-Ray daemon not reachable; subsegments not sent', error);
    try {
      udp.close();
    } catch {
      // already closed
    }
  };
  udp.on('error', fail);
  udp.unref();
  daemon = created;
  try {
    udp.connect(address.port, address.host, (error?: Error) => {
      // A failed connect (e.g. a lookup error) comes here, not as an 'error' event.
      if (error) return fail(error);
      created.connected = true;
      const pending = created.pending;
      created.pending = [];
      for (const text of pending) datagram(text);
    });
  } catch (error) {
    fail(error);
  }
  return created;
}

/** Moves the still-open subsegments under `doc` out of it: each is sent on its own when it closes. */
function detachOpen(open: Open): void {
  const visit = (doc: SubsegmentDocument) => {
    if (!doc.subsegments) return;
    for (const child of doc.subsegments) visit(child);
    if (doc.subsegments.some(isOpen)) doc.subsegments = doc.subsegments.filter((child) => !isOpen(child));
  };
  if (hasOpen(open.doc)) {
    markDetached(open.doc, open);
    visit(open.doc);
  }
}

function isOpen(doc: SubsegmentDocument): boolean {
  return doc.end_time === undefined;
}

function hasOpen(doc: SubsegmentDocument): boolean {
  return doc.subsegments?.some((child) => isOpen(child) || hasOpen(child)) ?? false;
}

/** Each nested subsegment's place, by its document: found again if it is still open when its top leaves. */
const openByDoc = new WeakMap<SubsegmentDocument, Open>();

function markDetached(doc: SubsegmentDocument, owner: Open): void {
  for (const child of doc.subsegments ?? []) {
    if (isOpen(child)) {
      const open = openByDoc.get(child);
      if (open) {
        open.detached = true;
        child.type = 'subsegment';
        child.trace_id = owner.trace.header.root;
        child.parent_id = doc.id;
      }
    } else markDetached(child, owner);
  }
}

function send(open: Open): void {
  try {
    detachOpen(open);
    emit(open.doc, open.trace.header.root);
  } catch (error) {
    reportOnce('format', 'X-Ray subsegment could not be sent', error);
  }
}

/** Sends `doc` in one datagram, or, when too large, its children apart and itself without them. */
function emit(doc: SubsegmentDocument, traceId: string): void {
  const body = JSON.stringify(doc, bigIntAsString);
  if (Buffer.byteLength(body) + HEADER.length <= MAX_DATAGRAM) {
    datagram(HEADER + body);
    return;
  }
  const children = doc.subsegments;
  if (!children || children.length === 0) {
    reportOnce('size', `X-Ray subsegment "${doc.name}" is larger than a datagram; not sent`);
    return;
  }
  delete doc.subsegments;
  for (const child of children) {
    child.type = 'subsegment';
    child.trace_id = traceId;
    child.parent_id = doc.id;
    emit(child, traceId);
  }
  emit(doc, traceId);
}

function bigIntAsString(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

function datagram(text: string): void {
  const target = socket();
  if (!target.connected) {
    if (target.pending.length < MAX_PENDING) target.pending.push(text);
    else reportOnce('pending', 'X-Ray daemon socket still connecting; subsegments not sent');
    return;
  }
  try {
    target.socket.send(text, (error) => {
      if (error) reportOnce(`send ${(error as NodeJS.ErrnoException).code ?? ''}`, 'X-Ray subsegment not sent', error);
    });
  } catch (error) {
    // A socket that can no longer send (closed): the next document gets a new one.
    if (daemon === target) daemon = undefined;
    reportOnce('closed', 'X-Ray subsegment not sent', error);
  }
}

/** Tests: forget the socket (closing it) and the problems already reported. */
export function resetXray(): void {
  try {
    daemon?.socket.close();
  } catch {
    // already closed
  }
  daemon = undefined;
  reported = new Set();
  lastHeader = undefined;
  lastTrace = undefined;
}

// ---------------------------------------------------------------------------------------------------
// Traced work.

/** Runs `work` in subsegment `name`, recording a thrown error; without a sampled trace, only runs it. */
export async function inSubsegment<T>(name: string, work: (open: Open | undefined) => Promise<T>): Promise<T> {
  const open = openSubsegment(name);
  if (!open) return work(undefined);
  try {
    return await current.run(open, () => work(open));
  } catch (error) {
    addError(open, error);
    throw error;
  } finally {
    closeSubsegment(open);
  }
}

// ---------------------------------------------------------------------------------------------------
// AWS clients (the SDK's patchers/aws3_p.js).

/** The SDK's THROTTLING_ERROR_CODES (@smithy/service-error-classification), by which a call is marked `throttle`. */
const THROTTLING_ERROR_CODES = new Set([
  'BandwidthLimitExceeded', 'EC2ThrottledException', 'LimitExceededException', 'PriorRequestNotComplete',
  'ProvisionedThroughputExceededException', 'RequestLimitExceeded', 'RequestThrottled', 'RequestThrottledException',
  'SlowDown', 'ThrottledException', 'Throttling', 'ThrottlingException', 'TooManyRequestsException',
  'TransactionInProgressException',
]);

/**
 * The request parameters the SDK's aws_whitelist.json records for the traced calls these functions make
 * (the S3 client's four operations, aws-s3.ts): parameter → attribute. A client or operation added later
 * takes its entry from that file.
 */
const RECORDED_PARAMETERS: Readonly<Record<string, Readonly<Record<string, Readonly<Record<string, string>>>>>> = {
  s3: {
    getObject: { Key: 'key', VersionId: 'version_id', Bucket: 'bucket_name' },
    putObject: { Key: 'key', Bucket: 'bucket_name' },
    deleteObjects: { Bucket: 'bucket_name' },
    listObjectVersions: { Prefix: 'prefix', Bucket: 'bucket_name' },
  },
};

interface Metadata {
  readonly httpStatusCode?: number;
  readonly requestId?: string;
  readonly extendedRequestId?: string;
  readonly attempts?: number;
}

function awsAttributes(service: string, operation: string, region: string, input: Record<string, unknown>, metadata: Metadata) {
  const aws: Record<string, unknown> = { operation: operation.charAt(0).toUpperCase() + operation.slice(1) };
  if (region) aws.region = region;
  if (metadata.requestId) aws.request_id = metadata.requestId;
  aws.retries = metadata.attempts || 0;
  const lower = service.toLowerCase();
  if (metadata.extendedRequestId && lower === 's3') aws.id_2 = metadata.extendedRequestId;
  const recorded = RECORDED_PARAMETERS[lower]?.[operation];
  if (recorded) for (const [param, attribute] of Object.entries(recorded)) if (input[param] !== undefined) aws[attribute] = input[param];
  return aws;
}

function statusFlags(doc: SubsegmentDocument, status: number | undefined): void {
  if (status === undefined) return;
  if (status >= 400 && status < 500) doc.error = true;
  else if (status >= 500 && status < 600) doc.fault = true;
}

interface MiddlewareArgs {
  readonly input?: object;
  readonly request?: { readonly headers?: Record<string, string> };
}
interface MiddlewareOutput {
  readonly output?: { readonly $metadata?: Metadata };
  readonly response?: { readonly headers?: Record<string, string | undefined> };
}
type Next = (args: MiddlewareArgs) => Promise<MiddlewareOutput>;

/** The shape of a client whose calls can be captured: an SDK v3 client or aws-json.ts's. */
export interface CapturableClient {
  readonly middlewareStack: {
    add(middleware: (next: Next, context: { clientName?: string; commandName?: string }) => Next, options: { step: 'build'; name: string }): void;
    remove(name: string): unknown;
  };
  readonly config: { readonly region?: string | (() => Promise<string> | string) };
}

const MIDDLEWARE_NAME = 'XRayTracing';

/** Records a call's attributes on its subsegment and closes it; a failure to record is reported, never thrown. */
async function recorded(record: () => Promise<void>, open: Open): Promise<void> {
  try {
    await record();
  } catch (error) {
    reportOnce('record', 'an AWS call could not be recorded in its subsegment', error);
  }
  closeSubsegment(open);
}

/** Adds the X-Ray middleware to a client (replacing an earlier one): each call is a subsegment named after the service. */
export function captureAwsClient<C>(client: C): C {
  const capturable = client as unknown as CapturableClient;
  if (!capturable?.middlewareStack) return client;
  // A client's region is fixed: asked once.
  let region: Promise<string> | undefined;
  const regionOf = (): Promise<string> =>
    (region ??= (async () => {
      const configured = capturable.config?.region;
      return typeof configured === 'function' ? await configured() : configured ?? '';
    })());
  capturable.middlewareStack.remove(MIDDLEWARE_NAME);
  capturable.middlewareStack.add(
    (next, context) => async (args) => {
      const service = (context.clientName ?? '').slice(0, -6); // without "Client"
      const open = openSubsegment(service);
      if (!open) return next(args);
          const command = (context.commandName ?? '').slice(0, -7); // without "Command"
      const operation = command.charAt(0).toLowerCase() + command.slice(1);
      const input = (args.input ?? {}) as Record<string, unknown>;
      open.doc.namespace = 'aws';
      const headers = args.request?.headers;
      if (headers) headers['X-Amzn-Trace-Id'] = `Root=${open.trace.header.root};Parent=${open.doc.id};Sampled=1${open.trace.header.extra}`;
      // The call's own outcome is what the caller gets; recording it can never change or delay that.
      let result: Awaited<ReturnType<typeof next>>;
      try {
        result = await next(args);
      } catch (error) {
        await recorded(async () => {
          const e = error as { $metadata?: Metadata; name?: string; message?: string; stack?: string; $retryable?: { throttling?: boolean } };
          if (e?.$metadata) {
            const status = e.$metadata.httpStatusCode;
            open.doc.aws = awsAttributes(service, operation, await regionOf(), input, e.$metadata);
            open.doc.http = status ? { response: { status } } : {};
            if (status === 429 || THROTTLING_ERROR_CODES.has(e.name ?? '') || e.$retryable?.throttling === true) open.doc.throttle = true;
            statusFlags(open.doc, status);
          }
          addError(open, { message: e?.message, name: e?.name, stack: e?.stack ?? new Error().stack }, true);
        }, open);
        throw error;
      }
      await recorded(async () => {
        const metadata = result?.output?.$metadata ?? {};
        open.doc.aws = awsAttributes(service, operation, await regionOf(), input, metadata);
        const http: NonNullable<SubsegmentDocument['http']> = {};
        if (metadata.httpStatusCode) http.response = { status: metadata.httpStatusCode };
        const length = result?.response?.headers?.['content-length'];
        if (length !== undefined) (http.response ??= {}).content_length = parseInt(length, 10) || 0;
        open.doc.http = http;
        if (metadata.httpStatusCode === 429) open.doc.throttle = true;
        statusFlags(open.doc, metadata.httpStatusCode);
      }, open);
      return result;
    },
    { step: 'build', name: MIDDLEWARE_NAME },
  );
  return client;
}

// ---------------------------------------------------------------------------------------------------
// Outgoing HTTP outside the AWS clients.

/**
 * `fetch` in a `remote` subsegment named after the host, with `http.request` (url without the query,
 * method) and `http.response` (status, content_length), error/throttle/fault by status, and the trace
 * header on the request: what the SDK's https patch and Powertools' fetch instrumentation record.
 * A `data:` URL is no outgoing call and is only fetched.
 */
export async function tracedFetch(input: string | URL, init: RequestInit = {}): Promise<Response> {
  const url = typeof input === 'string' ? new URL(input) : input;
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return fetch(url, init);
  const open = openSubsegment(url.hostname);
  if (!open) return fetch(url, init);
  const method = (init.method ?? 'GET').toUpperCase();
  open.doc.namespace = 'remote';
  open.doc.http = { request: { url: `${url.protocol}//${url.hostname}${url.pathname}`, method } };
  const headers = new Headers(init.headers);
  headers.set('X-Amzn-Trace-Id', `Root=${open.trace.header.root};Parent=${open.doc.id};Sampled=1`);
  try {
    const response = await fetch(url, { ...init, headers });
    const status = response.status;
    const length = response.headers.get('content-length');
    open.doc.http.response = { status, ...(length !== null && { content_length: parseInt(length, 10) }) };
    if (status === 429) open.doc.throttle = true;
    statusFlags(open.doc, status);
    return response;
  } catch (error) {
    open.doc.error = true;
    addError(open, error, true);
    throw error;
  } finally {
    closeSubsegment(open);
  }
}
