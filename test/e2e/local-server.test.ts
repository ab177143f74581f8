/**
 * The local API Gateway's own answers over HTTP, before any handler runs: unknown route, wrong method,
 * refused token, oversized body, a crashing handler, and CORS (preflights and the server's own refusals). A stub authenticator and stub handlers stand in
 * for Cognito and the routes (those are covered by happy-path.test.ts against the real stack).
 */
import http from 'node:http';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { close, createLocalApiServer, listen } from '../../bin/stack/http-server';
import { UnauthorizedError } from '../../functions/core/errors';

const ALLOWED = 'http://localhost:5173';
let server: http.Server;
let url: string;
const events: APIGatewayProxyEvent[] = [];
const crashes: unknown[] = [];

beforeAll(async () => {
  server = createLocalApiServer({
    authenticator: {
      async authenticate(authorization) {
        if (authorization !== `Bearer ${good}`) throw new UnauthorizedError('The token is not valid.');
        return { userId: '00000000-0000-4000-8000-000000000000', role: 'org_admin', tenantId: 'acme' };
      },
    },
    loadHandler: (route) => async (event) => {
      if (route.id === 'getBilling') throw new Error('secret internals at /srv/app.ts:42');
      events.push(event);
      return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ route: route.id }) };
    },
    onError: (error) => crashes.push(error),
    maxBodyBytes: 1024,
    corsOrigins: [ALLOWED],
  });
  url = await listen(server, 0);
});

afterAll(async () => {
  await close(server);
});

// A syntactically valid JWT whose payload the server turns into claims.
const good = `e30.${Buffer.from(JSON.stringify({ sub: 'u1', 'custom:role': 'org_admin', exp: 1 })).toString('base64url')}.sig`;

async function problemOf(response: Response) {
  expect(response.headers.get('content-type')).toBe('application/problem+json');
  const body = (await response.json()) as { status: number; instance: string; detail: string };
  expect(body.instance).toBe(response.headers.get('x-request-id'));
  return body;
}

describe('the local API server', () => {
  it('answers an unknown path with a 404 problem', async () => {
    const response = await fetch(`${url}/api/acme/nothing-here`);
    expect(response.status).toBe(404);
    expect((await problemOf(response)).status).toBe(404);
  });

  it('answers a known path with another method with a 405 problem and Allow', async () => {
    const response = await fetch(`${url}/api/acme/documents`, { method: 'PUT' });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('GET, POST');
    await problemOf(response);
  });

  it('refuses a tenant route without a valid token with a 401 problem before the handler runs', async () => {
    const before = events.length;
    const response = await fetch(`${url}/api/acme/documents`, { headers: { authorization: 'Bearer nope' } });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toMatch(/^Bearer/);
    await problemOf(response);
    expect(events.length).toBe(before);
  });

  it('passes the authorizer claims as strings and the body to the handler', async () => {
    const response = await fetch(`${url}/api/acme/documents?limit=2`, {
      method: 'POST',
      headers: { authorization: `Bearer ${good}`, 'content-type': 'application/json' },
      body: '{"name":"x"}',
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ route: 'createDocument' });
    const event = events[events.length - 1]!;
    expect(event.requestContext.authorizer).toEqual({ claims: { sub: 'u1', 'custom:role': 'org_admin', exp: '1' } });
    expect(event.body).toBe('{"name":"x"}');
    expect(event.queryStringParameters).toEqual({ limit: '2' });
    expect(event.requestContext.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers a body over the cap with a 413 problem', async () => {
    const response = await fetch(`${url}/api/acme/documents`, {
      method: 'POST',
      headers: { authorization: `Bearer ${good}`, 'content-type': 'application/json' },
      body: 'x'.repeat(4096),
    });
    expect(response.status).toBe(413);
    await problemOf(response);
  });

  it('turns a crashing handler into a generic 500 problem without its message or stack', async () => {
    const response = await fetch(`${url}/api/acme/billing`, { headers: { authorization: `Bearer ${good}` } });
    expect(response.status).toBe(500);
    const text = await response.text();
    expect(text).not.toMatch(/secret|internals|\.ts|at /);
    expect(JSON.parse(text)).toMatchObject({ status: 500, detail: 'The request could not be completed.' });
    expect(crashes).toHaveLength(1);
  });

  it.each(['constructor=1', '__proto__=1', 'toString=1', 'hasOwnProperty=1&valueOf=2'])(
    'serves /health and a tenant route with the query %s, never a 500',
    async (query) => {
      const health = await fetch(`${url}/health?${query}`);
      const list = await fetch(`${url}/api/acme/documents?${query}`, { headers: { authorization: `Bearer ${good}` } });
      expect([health.status, list.status]).toEqual([200, 200]);
      const name = query.split('=')[0]!;
      expect(Object.keys(events[events.length - 1]!.queryStringParameters ?? {})).toContain(name);
    },
  );

  it('serves a request with a header named toString or constructor, never a 500', async () => {
    const response = await fetch(`${url}/health`, { headers: { toString: 'x', constructor: 'y' } });
    expect(response.status).toBe(200);
    expect(events[events.length - 1]!.headers['toString']).toBe('x');
  });

  it('refuses a request with two Authorization headers with a 401 problem before the handler runs', async () => {
    // Prepare: two header lines (fetch would join them into one).
    const before = events.length;
    const send = (authorization: string | string[]) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = http.request(`${url}/api/acme/documents`, (res) => {
          let body = '';
          res.on('data', (chunk: Buffer) => (body += chunk.toString()));
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        });
        req.setHeader('Authorization', authorization);
        req.on('error', reject);
        req.end();
      });
    // Act
    const twice = await send([`Bearer ${good}`, 'Bearer other']);
    const twiceGood = await send([`Bearer ${good}`, `Bearer ${good}`]);
    // Assess
    expect([twice.status, twiceGood.status]).toEqual([401, 401]);
    expect(JSON.parse(twice.body)).toMatchObject({ status: 401 });
    expect(events.length).toBe(before);
    // Positive control: one header line with the same token is served.
    expect((await send(`Bearer ${good}`)).status).toBe(200);
  });
});

const accessControl = (response: Response) => [...response.headers.keys()].filter((k) => k.startsWith('access-control-'));

describe('CORS at the local API server', () => {
  it('answers a browser preflight from an allowed origin with 204 and the CORS policy, without running a handler', async () => {
    const before = events.length;
    const response = await fetch(`${url}/api/acme/documents`, {
      method: 'OPTIONS',
      headers: { origin: ALLOWED, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
    });
    expect(response.status).toBe(204);
    expect(response.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    expect(response.headers.get('access-control-allow-methods')).toBe('GET, POST, OPTIONS');
    expect(response.headers.get('access-control-allow-headers')).toMatch(/authorization.*content-type.*idempotency-key.*x-correlation-id/);
    expect(Number(response.headers.get('access-control-max-age'))).toBeGreaterThan(0);
    expect(response.headers.get('vary')).toBe('Origin');
    expect(events.length).toBe(before);
  });

  it.each([
    ['a foreign origin', { origin: 'https://evil.example' }],
    ['no origin', {}],
  ])('answers a preflight from %s without any Access-Control-* header', async (_label, headers: Record<string, string>) => {
    const response = await fetch(`${url}/api/acme/documents/d1`, { method: 'OPTIONS', headers: { ...headers, 'access-control-request-method': 'DELETE' } });
    expect(response.status).toBe(204);
    expect(accessControl(response)).toEqual([]);
    expect(response.headers.get('allow')).toBe('DELETE, GET, OPTIONS');
  });

  it.each([
    ['an unknown path (404)', '/api/acme/nothing-here', {}, 404],
    ['another method (405)', '/api/acme/documents', { method: 'PUT' }, 405],
    ['a refused token (401)', '/api/acme/documents', { headers: { authorization: 'Bearer nope' } }, 401],
    ['a body over the cap (413)', '/api/acme/documents', { method: 'POST', headers: { authorization: `Bearer ${good}`, 'content-type': 'application/json' }, body: 'x'.repeat(4096) }, 413],
    ['a crashed handler (500)', '/api/acme/billing', { headers: { authorization: `Bearer ${good}` } }, 500],
  ])('lets an allowed origin read its own refusal of %s, and only that origin', async (_label, path, init: RequestInit, status) => {
    const allowed = await fetch(`${url}${path}`, { ...init, headers: { ...(init.headers as Record<string, string>), origin: ALLOWED } });
    expect(allowed.status).toBe(status);
    expect(allowed.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    expect(allowed.headers.get('access-control-expose-headers')).toMatch(/x-request-id.*location.*retry-after.*ratelimit-limit/);
    await allowed.arrayBuffer();

    const foreign = await fetch(`${url}${path}`, { ...init, headers: { ...(init.headers as Record<string, string>), origin: 'https://evil.example' } });
    expect(foreign.status).toBe(status);
    expect(accessControl(foreign)).toEqual([]);
    await foreign.arrayBuffer();
  });
});
