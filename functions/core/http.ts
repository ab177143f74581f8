/**
 * HTTP shapes: parsing the API Gateway REST proxy event and building proxy results, including
 * `application/problem+json` (RFC 9457) from typed errors. Pure functions, no I/O.
 */
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import {
  AppError,
  BadRequestError,
  PayloadTooLargeError,
  UnsupportedMediaTypeError,
} from './errors';

export const MAX_BODY_BYTES = 64 * 1024;

/** A route's answer before it becomes a proxy result. */
export interface Reply {
  readonly status: number;
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
}

/**
 * A body already serialized as JSON, sent as it is: for a large answer that never changes (the OpenAPI
 * document), which would otherwise be parsed once and serialized again on every request. Anything else
 * that serializes it (`JSON.stringify`) gets the same value through `toJSON`.
 */
export class JsonText {
  constructor(readonly text: string) {}
  toJSON(): unknown {
    return JSON.parse(this.text);
  }
}

export const ok = (body: unknown): Reply => ({ status: 200, body });
/** A 201 always names the new resource (API.md): `location` is its API path, e.g. `/api/acme/documents/{id}`. */
export const created = (body: unknown, location: string): Reply => ({ status: 201, body, headers: { location } });
export const accepted = (body: unknown): Reply => ({ status: 202, body });
export const noContent = (): Reply => ({ status: 204 });

const BASE_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
};

/**
 * The value of header `name` (any case), or undefined when it is absent or given more than once.
 */
export function header(
  event: Pick<APIGatewayProxyEvent, 'headers'> & Partial<Pick<APIGatewayProxyEvent, 'multiValueHeaders'>>,
  name: string,
): string | undefined {
  // A header given more than once is ambiguous (the authorizer in front may have read another copy than
  // `headers` keeps): it counts as absent, so two Authorization headers are a 401, never two identities.
  if (copiesOf(event.multiValueHeaders, name).length > 1) return undefined;
  const copies = copiesOf(event.headers, name);
  return copies.length === 1 ? copies[0] : undefined;
}

/**
 * Every value the request sent for header `name` (any case): the multi-value copies when the event has
 * them, else the single-value map's. For a caller that must refuse, not ignore, a header sent twice.
 */
export function headerValues(
  event: Pick<APIGatewayProxyEvent, 'headers'> & Partial<Pick<APIGatewayProxyEvent, 'multiValueHeaders'>>,
  name: string,
): string[] {
  const multi = copiesOf(event.multiValueHeaders, name);
  return multi.length > 0 ? multi : copiesOf(event.headers, name);
}

function copiesOf(map: Readonly<Record<string, string | readonly string[] | undefined>> | null | undefined, name: string): string[] {
  const wanted = name.toLowerCase();
  return Object.entries(map ?? {})
    .filter(([key, value]) => key.toLowerCase() === wanted && value !== undefined)
    .flatMap(([, value]) => value as string | string[]);
}

export function toResult(reply: Reply, requestId: string): APIGatewayProxyResult {
  const headers: Record<string, string> = { ...BASE_HEADERS, ...reply.headers, 'x-request-id': requestId };
  if (reply.body === undefined) return { statusCode: reply.status, headers, body: '' };
  headers['content-type'] = 'application/json';
  return { statusCode: reply.status, headers, body: reply.body instanceof JsonText ? reply.body.text : JSON.stringify(reply.body) };
}

/** The one mapping from errors to problem+json. Unknown errors become a 500 that reveals nothing. */
export function problem(error: unknown, requestId: string): APIGatewayProxyResult {
  const known = error instanceof AppError;
  const status = known ? error.status : 500;
  const body = {
    type: known ? error.type : 'about:blank',
    title: known ? error.title : 'Internal Server Error',
    status,
    detail: known ? error.detail : 'The request could not be completed.',
    instance: requestId,
  };
  return {
    statusCode: status,
    headers: {
      ...BASE_HEADERS,
      ...(known ? error.headers : {}),
      'content-type': 'application/problem+json',
      'x-request-id': requestId,
    },
    body: JSON.stringify(body),
  };
}

/** Reads and parses a JSON body: 415 unless application/json, 413 above 64 KiB, 400 if not an object. */
export function parseJsonBody(event: Pick<APIGatewayProxyEvent, 'headers' | 'body' | 'isBase64Encoded'>): Record<string, unknown> {
  const contentType = header(event, 'content-type');
  if (!contentType || !/^application\/json\s*(;\s*charset=utf-8\s*)?$/i.test(contentType.trim())) {
    throw new UnsupportedMediaTypeError('Send the body as application/json.');
  }
  const raw = event.body ?? '';
  const bytes = event.isBase64Encoded ? Buffer.from(raw, 'base64') : Buffer.from(raw, 'utf8');
  if (bytes.length > MAX_BODY_BYTES) throw new PayloadTooLargeError(`The body is larger than ${MAX_BODY_BYTES} bytes.`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new BadRequestError('The body is not valid JSON.');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new BadRequestError('The body must be a JSON object.');
  }
  return parsed as Record<string, unknown>;
}
