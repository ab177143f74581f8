/**
 * Calling route handlers in-process, the way API Gateway calls a Lambda: a REST proxy event in, a proxy
 * result out. The authenticator is injected (token verification has its own e2e tests against the
 * emulator); everything else — the wrapper, the SQL, row-level security — is the real thing.
 */
import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import type { Authenticator, Caller } from '../../functions/core/auth';
import { UnauthorizedError } from '../../functions/core/errors';
import type { RouteSpec } from '../../functions/routes';

export interface EventInput {
  readonly pathParameters?: Record<string, string>;
  readonly query?: Record<string, string>;
  readonly body?: unknown;
  readonly rawBody?: string;
  readonly contentType?: string | null;
  readonly caller?: Caller;
}

/** Builds the event a deployed stage sends for `spec`. The caller travels in the Authorization header. */
export function eventFor(spec: RouteSpec, input: EventInput = {}): APIGatewayProxyEvent {
  const path = spec.path.replace(/\{([^}]+)\}/g, (_, name: string) => input.pathParameters?.[name] ?? `{${name}}`);
  const headers: Record<string, string> = {};
  if (input.caller) headers.Authorization = `Bearer ${encodeCaller(input.caller)}`;
  const body = input.rawBody ?? (input.body === undefined ? null : JSON.stringify(input.body));
  if (body !== null && input.contentType !== null) headers['Content-Type'] = input.contentType ?? 'application/json';
  return {
    resource: spec.path,
    path,
    httpMethod: spec.method,
    headers,
    multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])),
    queryStringParameters: input.query ?? null,
    multiValueQueryStringParameters: null,
    pathParameters: input.pathParameters ?? null,
    stageVariables: null,
    body,
    isBase64Encoded: false,
    requestContext: { requestId: randomUUID() } as APIGatewayProxyEvent['requestContext'],
  };
}

/** A stand-in token: the caller, base64url JSON, shaped like a JWT so the wrapper's header check passes. */
function encodeCaller(caller: Caller): string {
  return `test.${Buffer.from(JSON.stringify(caller)).toString('base64url')}.sig`;
}

/** An authenticator that trusts the stand-in token above: for tests of what comes after verification. */
export const trustingAuthenticator: Authenticator = {
  async authenticate(authorization) {
    const match = /^Bearer test\.([A-Za-z0-9_-]+)\.sig$/.exec(authorization ?? '');
    if (!match) throw new UnauthorizedError('A bearer ID token is required.');
    return JSON.parse(Buffer.from(match[1]!, 'base64url').toString('utf8')) as Caller;
  },
};

export function json(result: APIGatewayProxyResult): Record<string, unknown> {
  return result.body ? (JSON.parse(result.body) as Record<string, unknown>) : {};
}
