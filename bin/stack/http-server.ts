/**
 * The local API Gateway: a node:http server that turns each request into the REST proxy-integration
 * event a deployed stage sends (with the Cognito authorizer's claims filled in) and calls the same
 * handler module a Lambda would load, found through the route manifest. Router-level refusals (unknown
 * path 404, wrong method 405, unreadable path parameter 400, body over the cap 413, token refused by the
 * "authorizer" 401) use the runtime's own problem+json mapping, so clients see one error format.
 * CORS as API Gateway does it: a preflight `OPTIONS` on any known path is answered here (204), and the
 * server's own refusals carry the CORS headers of an allowed origin, as the gateway responses do; the
 * handlers add their own, as the Lambdas do.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import type { Authenticator } from '../../functions/core/auth';
import { preflightHeaders, withCors } from '../../functions/core/cors';
import { BadRequestError, MethodNotAllowedError, NotFoundError, PayloadTooLargeError } from '../../functions/core/errors';
import { problem } from '../../functions/core/http';
import { routeList, type LambdaHandler, type RouteSpec } from '../../functions/routes';

/** Far above the handlers' own 64 KiB limit (so they answer it), far below what could hurt the process. */
export const MAX_REQUEST_BYTES = 1024 * 1024;

const FUNCTIONS_DIR = path.join(__dirname, '..', '..', 'functions');

export type LocalRoute = RouteSpec & { readonly id: string };

export type RouteMatch =
  | { readonly kind: 'route'; readonly route: LocalRoute; readonly pathParameters: Record<string, string> | null }
  | { readonly kind: 'not-found' }
  | { readonly kind: 'method-not-allowed'; readonly allow: readonly string[] }
  | { readonly kind: 'bad-parameter' };

interface Template {
  readonly route: LocalRoute;
  readonly segments: readonly string[];
}

function templatesOf(routes: readonly LocalRoute[]): Template[] {
  const templates = routes.map((route) => ({ route, segments: route.path.split('/') }));
  // API Gateway prefers a literal resource over a `{param}` sibling: sort the more literal templates first.
  const weight = (t: Template) => t.segments.map((s) => (s.startsWith('{') ? '1' : '0')).join('');
  return templates.sort((a, b) => weight(a).localeCompare(weight(b)));
}

/**
 * Matches a raw request path (no query string) against the manifest's path templates, segment by segment
 * and literally: no `..` normalisation, no decoding of literal segments. Parameters are URL-decoded.
 */
export function matchRoute(method: string, rawPath: string, routes: readonly LocalRoute[] = routeList): RouteMatch {
  const segments = rawPath.split('/');
  const allow = new Set<string>();
  for (const { route, segments: template } of templatesOf(routes)) {
    if (template.length !== segments.length) continue;
    const raw: Record<string, string> = {};
    const fits = template.every((part, i) => {
      const actual = segments[i]!;
      if (part.startsWith('{') && part.endsWith('}')) {
        raw[part.slice(1, -1)] = actual;
        return actual !== '';
      }
      return part === actual;
    });
    if (!fits) continue;
    if (route.method !== method) {
      allow.add(route.method);
      continue;
    }
    const names = Object.keys(raw);
    if (names.length === 0) return { kind: 'route', route, pathParameters: null };
    const pathParameters: Record<string, string> = {};
    try {
      for (const name of names) pathParameters[name] = decodeURIComponent(raw[name]!);
    } catch {
      return { kind: 'bad-parameter' };
    }
    return { kind: 'route', route, pathParameters };
  }
  return allow.size > 0 ? { kind: 'method-not-allowed', allow: [...allow].sort() } : { kind: 'not-found' };
}

class BodyTooLargeError extends Error {}

/** Reads the body up to `limit` bytes; beyond that it stops buffering and rejects. */
function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(new BodyTooLargeError());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        req.pause();
        reject(new BodyTooLargeError());
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

/**
 * A map for names the client chose: no prototype, so no name is special (`__proto__`, `constructor`,
 * `toString` are keys like any other, never inherited members).
 */
function clientMap<V>(): Record<string, V> {
  return Object.create(null) as Record<string, V>;
}

/** API Gateway's two header maps: the last value wins in `headers`, every value in `multiValueHeaders`. */
function headerMaps(rawHeaders: readonly string[]) {
  const headers = clientMap<string>();
  const multiValueHeaders = clientMap<string[]>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const value = rawHeaders[i + 1]!;
    // Keep the case the client sent (API Gateway does), but one entry per name.
    const existing = Object.keys(multiValueHeaders).find((k) => k.toLowerCase() === name.toLowerCase()) ?? name;
    headers[existing] = value;
    (multiValueHeaders[existing] ??= []).push(value);
  }
  return { headers, multiValueHeaders };
}

function queryMaps(search: string) {
  if (search === '' || search === '?') return { queryStringParameters: null, multiValueQueryStringParameters: null };
  const single = clientMap<string>();
  const multi = clientMap<string[]>();
  for (const [name, value] of new URLSearchParams(search)) {
    single[name] = value;
    (multi[name] ??= []).push(value);
  }
  return { queryStringParameters: single, multiValueQueryStringParameters: multi };
}

/**
 * The Authorization header if the request carries exactly one. Node keeps the first of several (and
 * API Gateway's event the last): a request with more than one is ambiguous and gets no identity.
 */
function authorizationOf(rawHeaders: readonly string[]): string | undefined {
  const values: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() === 'authorization') values.push(rawHeaders[i + 1]!);
  }
  return values.length === 1 ? values[0] : undefined;
}

/** Claims as API Gateway's Cognito authorizer passes them: every value a string. */
function claimsOf(authorization: string): Record<string, string> {
  const token = authorization.trim().slice('Bearer '.length);
  const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
  return Object.fromEntries(
    Object.entries(payload).map(([k, v]) => [k, typeof v === 'string' ? v : Array.isArray(v) ? v.join(',') : JSON.stringify(v)]),
  );
}

/** What {@link buildEvent} needs to know about one request. */
export interface IncomingRequest {
  readonly method: string;
  readonly rawPath: string;
  readonly search: string;
  readonly rawHeaders: readonly string[];
  readonly body: Buffer;
  readonly sourceIp: string;
}

/** The REST API proxy-integration event a deployed stage sends for `request` on `route`. */
export function buildEvent(
  request: IncomingRequest,
  route: LocalRoute,
  pathParameters: Record<string, string> | null,
  claims: Record<string, string> | null,
  requestId: string,
  stage = 'local',
): APIGatewayProxyEvent {
  const { headers, multiValueHeaders } = headerMaps(request.rawHeaders);
  const now = Date.now();
  const userAgent = Object.entries(headers).find(([k]) => k.toLowerCase() === 'user-agent')?.[1] ?? null;
  return {
    resource: route.path,
    path: request.rawPath,
    httpMethod: request.method,
    headers,
    multiValueHeaders,
    ...queryMaps(request.search),
    pathParameters,
    stageVariables: null,
    requestContext: {
      accountId: '123456789012',
      apiId: 'local',
      authorizer: claims ? { claims } : null,
      protocol: 'HTTP/1.1',
      httpMethod: request.method,
      identity: {
        accessKey: null,
        accountId: null,
        apiKey: null,
        apiKeyId: null,
        caller: null,
        clientCert: null,
        cognitoAuthenticationProvider: null,
        cognitoAuthenticationType: null,
        cognitoIdentityId: null,
        cognitoIdentityPoolId: null,
        principalOrgId: null,
        sourceIp: request.sourceIp,
        user: null,
        userAgent,
        userArn: null,
      },
      path: `/${stage}${request.rawPath}`,
      stage,
      requestId,
      requestTimeEpoch: now,
      resourceId: route.id,
      resourcePath: route.path,
    },
    // API Gateway passes text bodies as they are; there are no binary media types on this API.
    body: request.body.length > 0 ? request.body.toString('utf8') : null,
    isBase64Encoded: false,
  };
}

export interface LocalApiServerOptions {
  /** Verifies ID tokens like API Gateway's Cognito authorizer does, before any handler runs. */
  readonly authenticator: Authenticator;
  /** @default loads `functions/${route.handler}` and takes its `handler` */
  readonly loadHandler?: (route: LocalRoute) => LambdaHandler;
  /** Called with handler crashes and other unexpected failures (never shown to the client). */
  readonly onError?: (error: unknown) => void;
  /** @default MAX_REQUEST_BYTES */
  readonly maxBodyBytes?: number;
  /** The routes served. @default the manifest's (`routeList`) */
  readonly routes?: readonly LocalRoute[];
  /** Browser origins answered with CORS headers (the local stack's `CORS_ORIGINS`). @default none */
  readonly corsOrigins?: readonly string[];
}

/** Loads `functions/${route.handler}` and takes its `handler`, as a Lambda does. */
export function loadRouteHandler(route: LocalRoute): LambdaHandler {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the manifest names the module at runtime.
  const loaded = require(path.join(FUNCTIONS_DIR, route.handler)) as { handler?: unknown };
  if (typeof loaded.handler !== 'function') throw new Error(`functions/${route.handler} exports no handler`);
  return loaded.handler as LambdaHandler;
}

function send(res: http.ServerResponse, result: APIGatewayProxyResult, close = false): void {
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(result.headers ?? {})) headers[k] = String(v);
  for (const [k, v] of Object.entries(result.multiValueHeaders ?? {})) headers[k] = v.map(String);
  if (close) headers.connection = 'close';
  const body = result.isBase64Encoded ? Buffer.from(result.body ?? '', 'base64') : Buffer.from(result.body ?? '', 'utf8');
  headers['content-length'] = String(body.length);
  res.writeHead(result.statusCode, headers);
  res.end(body);
}

/** Creates (does not start) the local API server. */
export function createLocalApiServer(options: LocalApiServerOptions): http.Server {
  const load = options.loadHandler ?? loadRouteHandler;
  const routes = options.routes ?? routeList;
  const handlers = new Map<string, LambdaHandler>();
  const maxBodyBytes = options.maxBodyBytes ?? MAX_REQUEST_BYTES;
  const corsOrigins = options.corsOrigins ?? [];

  async function serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const requestId = randomUUID();
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const rawPath = q === -1 ? url : url.slice(0, q);
    const search = q === -1 ? '' : url.slice(q);
    const origin = req.headers.origin;
    // The server's own answers, like API Gateway's gateway responses, carry CORS headers for an allowed origin.
    const refuse = (result: APIGatewayProxyResult, close = false) => send(res, withCors(result, origin, corsOrigins), close);

    const match = matchRoute(method, rawPath, routes);
    if (match.kind === 'not-found') return refuse(problem(new NotFoundError('No route matches this path.'), requestId));
    if (match.kind === 'bad-parameter') {
      return refuse(problem(new BadRequestError('A path parameter is not valid URL encoding.'), requestId));
    }
    if (match.kind === 'method-not-allowed') {
      if (method === 'OPTIONS') {
        // A preflight, answered without running any function (API Gateway's OPTIONS method per resource).
        const headers = { ...preflightHeaders(origin, corsOrigins, match.allow), allow: [...match.allow, 'OPTIONS'].join(', '), 'x-request-id': requestId };
        return send(res, { statusCode: 204, headers, body: '' });
      }
      const refused = problem(new MethodNotAllowedError(`This path takes ${match.allow.join(', ')}.`), requestId);
      return refuse({ ...refused, headers: { ...refused.headers, allow: match.allow.join(', ') } });
    }

    let body: Buffer;
    try {
      body = await readBody(req, maxBodyBytes);
    } catch (error) {
      if (error instanceof BodyTooLargeError) {
        // Stop reading: close the connection once the answer is out instead of draining the rest.
        res.once('finish', () => req.destroy());
        return refuse(problem(new PayloadTooLargeError(`The body is larger than ${maxBodyBytes} bytes.`), requestId), true);
      }
      throw error;
    }

    const { route, pathParameters } = match;
    let claims: Record<string, string> | null = null;
    if (route.auth !== 'public') {
      const authorization = authorizationOf(req.rawHeaders);
      try {
        await options.authenticator.authenticate(authorization);
        claims = claimsOf(authorization!);
      } catch (error) {
        // The authorizer refuses before any function runs, as API Gateway does.
        return refuse(problem(error, requestId));
      }
    }

    const event = buildEvent(
      { method, rawPath, search, rawHeaders: req.rawHeaders, body, sourceIp: req.socket.remoteAddress ?? '127.0.0.1' },
      route,
      pathParameters,
      claims,
      requestId,
    );
    let result: APIGatewayProxyResult;
    try {
      let handler = handlers.get(route.id);
      if (!handler) {
        handler = load(route);
        handlers.set(route.id, handler);
      }
      result = await handler(event);
      if (typeof result?.statusCode !== 'number') throw new Error(`functions/${route.handler} returned no proxy result`);
    } catch (error) {
      options.onError?.(error);
      // Like a Lambda that crashed: a generic 500 that reveals nothing (a gateway response, so with CORS).
      result = withCors(problem(error, requestId), origin, corsOrigins);
    }
    send(res, result);
  }

  return http.createServer((req, res) => {
    serve(req, res).catch((error: unknown) => {
      options.onError?.(error);
      if (!res.headersSent) send(res, problem(new Error('local server failed'), randomUUID()));
      else res.destroy();
    });
  });
}

/** Listens on `host:port` (0: any free port) and resolves with the base URL. Rejects on EADDRINUSE. */
export function listen(server: http.Server, port: number, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address() as AddressInfo;
      resolve(`http://${host}:${address.port}`);
    });
  });
}

/** Stops accepting connections and closes idle keep-alive sockets. */
export function close(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), 2000).unref();
  });
}
