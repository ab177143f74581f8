/**
 * The JWKS download in a traced request: a `remote` subsegment of the request's trace, as the X-Ray SDK's
 * https patch (or Powertools' fetch instrumentation) gave it, with the trace header on the download.
 * This test file's process has Lambda's tracing environment (set before the modules load: tracing is
 * decided once per container) and a UDP listener as the daemon; the JWKS is served by a local server.
 * A `data:` URL (the deployed snapshot) is no download and makes no subsegment.
 */
import { generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import http from 'node:http';
import type { createAuthenticator as CreateAuthenticator } from '../../../functions/core/auth';
import type { traced as Traced } from '../../../functions/core/observability';
import { startXrayDaemon, type XrayDaemon } from '../../support/xray-daemon';

const POOL = 'eu-west-1_Traced';
const CLIENT = 'traced-client';
const root = '1-6759e988-bd862e3fe1be46a994272793';
const facade = '63995c3f42cd8ad8';

let daemon: XrayDaemon;
let jwksServer: http.Server;
let jwksUrl: string;
const downloads: (string | undefined)[] = [];
let createAuthenticator: typeof CreateAuthenticator;
let traced: typeof Traced;
const saved = { ...process.env };

const signing = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwks = { keys: [{ ...(signing.publicKey.export({ format: 'jwk' }) as object), kid: 'k1', alg: 'RS256', use: 'sig' }] };

function idToken(): string {
  const now = Math.floor(Date.now() / 1000);
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const claims = {
    sub: randomUUID(), iss: `https://cognito-idp.eu-west-1.amazonaws.com/${POOL}`, aud: CLIENT, token_use: 'id', iat: now, auth_time: now,
    exp: now + 600, 'custom:tenant_id': 'acme', 'custom:role': 'user',
  };
  const input = `${b64({ alg: 'RS256', typ: 'JWT', kid: 'k1' })}.${b64(claims)}`;
  return `${input}.${sign('RSA-SHA256', Buffer.from(input), signing.privateKey).toString('base64url')}`;
}

beforeAll(async () => {
  daemon = await startXrayDaemon();
  jwksServer = http.createServer((req, res) => {
    downloads.push(req.headers['x-amzn-trace-id'] as string | undefined);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(jwks));
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  jwksUrl = `http://127.0.0.1:${(jwksServer.address() as { port: number }).port}/pool/.well-known/jwks.json`;
  Object.assign(process.env, {
    AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
    LAMBDA_TASK_ROOT: process.cwd(),
    AWS_XRAY_DAEMON_ADDRESS: daemon.address,
    _X_AMZN_TRACE_ID: `Root=${root};Parent=${facade};Sampled=1`,
  });
  // Loaded now, with the environment above (config.ts decides tracing once, at the first request).
  ({ createAuthenticator } = require('../../../functions/core/auth') as { createAuthenticator: typeof CreateAuthenticator });
  ({ traced } = require('../../../functions/core/observability') as { traced: typeof Traced });
});

afterAll(async () => {
  process.env = saved;
  await daemon.close();
  await new Promise((resolve) => jwksServer.close(resolve));
});

it('shows the JWKS download as a remote subsegment of the request, with the trace header on the download', async () => {
  const auth = createAuthenticator({ userPoolId: POOL, clientId: CLIENT, jwksUrl });
  const caller = await traced('## listDocuments', () => auth.authenticate(`Bearer ${idToken()}`));
  expect(caller).toMatchObject({ role: 'user', tenantId: 'acme' });
  await new Promise((resolve) => setTimeout(resolve, 100));
  expect(daemon.documents()).toHaveLength(1);
  const [request] = daemon.documents();
  expect(request).toMatchObject({ name: '## listDocuments', trace_id: root, parent_id: facade });
  const downloadsTraced = (request!.subsegments ?? []) as Record<string, any>[];
  expect(downloadsTraced.length).toBeGreaterThanOrEqual(1);
  for (const sub of downloadsTraced) {
    expect(sub).toMatchObject({
      name: '127.0.0.1',
      namespace: 'remote',
      http: { request: { url: 'http://127.0.0.1/pool/.well-known/jwks.json', method: 'GET' }, response: { status: 200 } },
    });
    expect(downloads).toContain(`Root=${root};Parent=${sub.id};Sampled=1`);
  }
  expect(downloads).toHaveLength(downloadsTraced.length);
});

it('makes no subsegment for a JWKS snapshot in a data: URL (no download)', async () => {
  daemon.clear();
  const snapshot = `data:application/json;base64,${Buffer.from(JSON.stringify(jwks)).toString('base64')}`;
  const auth = createAuthenticator({ userPoolId: POOL, clientId: CLIENT, jwksUrl: snapshot });
  await traced('## listDocuments', () => auth.authenticate(`Bearer ${idToken()}`));
  await new Promise((resolve) => setTimeout(resolve, 100));
  expect(daemon.documents()).toHaveLength(1);
  expect(daemon.documents()[0]!.subsegments).toBeUndefined();
});
