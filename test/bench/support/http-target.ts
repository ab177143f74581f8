/**
 * The server side of the API throughput benchmark, run in its own process (`node --import tsx
 * test/bench/support/http-target.ts <mode>`) so that it never shares an event loop with the load
 * generator. Configuration comes from the environment, as a Lambda's does (`functions/core/config.ts`).
 *
 * Modes:
 *  - `api`: the local API Gateway of the local stack (`bin/stack/http-server.ts`): it verifies the ID
 *    token as the Cognito authorizer would, builds the REST proxy event and calls the real handler
 *    module (`functions/documents/list.ts`, loaded by the server's default loader), which verifies the
 *    token again, guards, meters and runs the list in one transaction with the container's own
 *    postgres.js client (`DATABASE_URL`, `DB_POOL_MAX`).
 *  - `baseline`: a minimal `node:http` server that runs the same route work (the same SELECT and the
 *    same page shaping) through `withTenant` with a client made by the same `createSql` from the same
 *    configuration: no token, no guard, no metering, no logging.
 *
 * Talks to its parent over IPC: sends `{ type: 'listening', url }`; answers `{ type: 'cpu' }` with the
 * process's CPU time so far and its resident set size, `{ type: 'heap' }` with its heap after a full
 * collection (when run with --expose-gc); exits on `{ type: 'stop' }`.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLocalApiServer } from '../../../bin/stack/http-server';
import { createAuthenticator } from '../../../functions/core/auth';
import { config, required } from '../../../functions/core/config';
import { createSql, withTenant, type RequestContext } from '../../../functions/core/db';
import type { RouteContext } from '../../../functions/core/handler';
import { work } from '../../../functions/documents/list';

export type TargetMode = 'api' | 'baseline';

export type TargetMessage =
  | { readonly type: 'listening'; readonly url: string }
  | { readonly type: 'cpu'; readonly userMicros: number; readonly systemMicros: number; readonly rssBytes: number }
  | { readonly type: 'heap'; readonly heapUsedBytes: number | null };

export type ParentMessage = { readonly type: 'cpu' } | { readonly type: 'heap' } | { readonly type: 'stop' };

/** Any member id will do for the baseline: it runs no guard, and the list query does not read it. */
const BASELINE_USER = randomUUID();
const LIST_PATH = /^\/api\/([^/?]+)\/documents$/;

function baselineServer(): http.Server {
  const { database, aws } = config();
  const sql = createSql(database, aws);
  return http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://local');
    const match = LIST_PATH.exec(url.pathname);
    if (req.method !== 'GET' || !match) {
      res.writeHead(404).end();
      return;
    }
    const context: RequestContext = { tenantId: match[1]!, userId: BASELINE_USER, role: 'user', requestId: randomUUID() };
    const query = Object.fromEntries(url.searchParams);
    withTenant(sql, context, (tx) =>
      work({ ...context, tx, routeId: 'listDocuments', params: {}, query, body: {}, audit: () => undefined, afterCommit: () => undefined } satisfies RouteContext),
    ).then(
      (reply) => {
        const body = JSON.stringify(reply.body);
        res.writeHead(reply.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      },
      (error: unknown) => {
        process.stderr.write(`[http-target] ${error instanceof Error ? error.message : String(error)}\n`);
        res.writeHead(500).end();
      },
    );
  });
}

function apiServer(): http.Server {
  const { auth } = config();
  // The stand-in for API Gateway's Cognito authorizer: its own verifier, as the authorizer is not the Lambda.
  const authorizer = createAuthenticator({
    userPoolId: required(auth.userPoolId, 'USER_POOL_ID'),
    clientId: required(auth.clientId, 'USER_POOL_CLIENT_ID'),
    jwksUrl: auth.jwksUrl,
  });
  return createLocalApiServer({
    authenticator: authorizer,
    onError: (error) => process.stderr.write(`[http-target] ${error instanceof Error ? error.message : String(error)}\n`),
  });
}

function main(): void {
  const mode = process.argv[2] as TargetMode;
  if (mode !== 'api' && mode !== 'baseline') throw new Error(`mode must be api or baseline, got "${String(mode)}"`);
  if (!process.send) throw new Error('run me as a child process with an IPC channel');
  const server = mode === 'api' ? apiServer() : baselineServer();
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as AddressInfo;
    process.send!({ type: 'listening', url: `http://127.0.0.1:${port}` } satisfies TargetMessage);
  });
  process.on('message', (message: ParentMessage) => {
    if (message.type === 'cpu') {
      const { user, system } = process.cpuUsage();
      process.send!({ type: 'cpu', userMicros: user, systemMicros: system, rssBytes: process.memoryUsage.rss() } satisfies TargetMessage);
    } else if (message.type === 'heap') {
      // The live heap after a full collection (needs --expose-gc): what a leak grows, unlike RSS, which
      // also holds the garbage of the last seconds and the heap's own head-room.
      const gc = (globalThis as { gc?: () => void }).gc;
      gc?.();
      process.send!({ type: 'heap', heapUsedBytes: gc ? process.memoryUsage().heapUsed : null } satisfies TargetMessage);
    } else if (message.type === 'stop') {
      server.closeAllConnections();
      server.close(() => process.exit(0));
      setTimeout(() => process.exit(0), 2000).unref();
    }
  });
  process.on('disconnect', () => process.exit(0));
}

main();
