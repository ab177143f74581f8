/**
 * Bad input over HTTP gets a 4xx problem+json, never a 500 and never a stack trace, and changes nothing.
 * "Nothing" is checked by request id: every change to documents, members or usage events must commit
 * with an audit event of its own request (a deferred constraint), so a refused request that left no audit
 * event left no change. (Other test files write to the same tenants concurrently, so counts would not do.)
 */
import http from 'node:http';
import postgres from 'postgres';
import { assertDocumented } from './support/openapi-conformance';
import { startE2eStack, type E2eStack } from './support/stack';

let stack: E2eStack;
let admin: postgres.Sql;
let token: string;

beforeAll(async () => {
  stack = await startE2eStack();
  admin = postgres(process.env.TEST_ADMIN_DATABASE_URL!, { max: 1, onnotice: () => undefined });
  token = await stack.token('acme', 'org_admin');
});
afterAll(async () => {
  await admin?.end();
  await stack?.stop();
});

/** Rows any tenant holds that were written by the request with this id. */
async function writtenBy(requestId: string | string[] | undefined): Promise<number> {
  const [row] = await admin<{ count: number }[]>`
    select count(*)::int as count from app.audit_events where request_id = ${String(requestId)}`;
  return row!.count;
}

/** A raw HTTP request: no URL normalisation (so `..` and `%00` reach the server as sent). */
function raw(method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const url = new URL(stack.url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const answer = { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') };
        try {
          assertDocumented(method, path, { ...answer, header: (name) => [res.headers[name.toLowerCase()] ?? null].flat()[0] });
          resolve(answer);
        } catch (error) {
          reject(error as Error);
        }
      });
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

const auth = () => ({ authorization: `Bearer ${token}` });
const jsonHeaders = () => ({ ...auth(), 'content-type': 'application/json' });
const valid = { name: 'ok.txt', contentType: 'text/plain', sizeBytes: 3 };

type Case = [name: string, method: string, path: string, headers: () => Record<string, string>, body: string | undefined, expected: number];
const cases: Case[] = [
  ['invalid JSON', 'POST', '/api/acme/documents', jsonHeaders, '{"name": "a",', 400],
  ['a wrong content type', 'POST', '/api/acme/documents', () => ({ ...auth(), 'content-type': 'text/plain' }), JSON.stringify(valid), 415],
  ['no content type', 'POST', '/api/acme/documents', auth, JSON.stringify(valid), 415],
  ['a 65 KiB body', 'POST', '/api/acme/documents', jsonHeaders, JSON.stringify({ ...valid, name: 'x'.repeat(65 * 1024) }), 413],
  ['a 256-character name', 'POST', '/api/acme/documents', jsonHeaders, JSON.stringify({ ...valid, name: 'n'.repeat(256) }), 400],
  ['size 0', 'POST', '/api/acme/documents', jsonHeaders, JSON.stringify({ ...valid, sizeBytes: 0 }), 400],
  ['size -1', 'POST', '/api/acme/documents', jsonHeaders, JSON.stringify({ ...valid, sizeBytes: -1 }), 400],
  ['size "1"', 'POST', '/api/acme/documents', jsonHeaders, JSON.stringify({ ...valid, sizeBytes: '1' }), 400],
  ['size 1e20', 'POST', '/api/acme/documents', jsonHeaders, '{"name":"ok.txt","contentType":"text/plain","sizeBytes":1e20}', 400],
  ['a JSON array body', 'POST', '/api/acme/documents', jsonHeaders, '[]', 400],
  ['a usage event with a float quantity', 'POST', '/api/acme/usage-events', jsonHeaders, '{"metric":"ai_tokens","quantity":1.5,"idempotencyKey":"k"}', 400],
  ['a non-UUID document id', 'GET', '/api/acme/documents/not-a-uuid', auth, undefined, 404],
  ['a path-like document id', 'DELETE', '/api/acme/documents/..%2f..%2fetc', auth, undefined, 404],
  ['limit 0', 'GET', '/api/acme/documents?limit=0', auth, undefined, 400],
  ['limit 101', 'GET', '/api/acme/documents?limit=101', auth, undefined, 400],
  ['limit abc', 'GET', '/api/acme/documents?limit=abc', auth, undefined, 400],
  ['a garbage cursor', 'GET', '/api/acme/documents?cursor=%%%garbage', auth, undefined, 400],
  ['a well-formed but forged cursor', 'GET', `/api/acme/documents?cursor=${Buffer.from('["x","y"]').toString('base64url')}`, auth, undefined, 400],
  ['the path tenant ACME', 'GET', '/api/ACME/documents', auth, undefined, 404],
  ['the path tenant acme%00', 'GET', '/api/acme%00/documents', auth, undefined, 404],
  ['the path tenant ..', 'GET', '/api/../documents', auth, undefined, 404],
  ['the path tenant %2e%2e', 'GET', '/api/%2e%2e/documents', auth, undefined, 404],
  ['a malformed escape in the path', 'GET', '/api/acme/documents/%E0%A4%A', auth, undefined, 400],
  ['an unknown route', 'GET', '/api/acme/invoices', auth, undefined, 404],
  ['an unknown top-level path', 'GET', '/admin', auth, undefined, 404],
  ['an unknown method on a known path', 'PATCH', '/api/acme/documents', jsonHeaders, '{}', 405],
  ['PUT on a document', 'PUT', '/api/acme/documents/00000000-0000-4000-8000-000000000000', jsonHeaders, '{}', 405],
];

describe('bad input over HTTP', () => {
  it('accepts the valid request the bad ones are variations of (positive control)', async () => {
    const response = await raw('POST', '/api/acme/documents', jsonHeaders(), JSON.stringify(valid));
    expect(response.status).toBe(201);
    expect(await writtenBy(response.headers['x-request-id'])).toBe(1);
  });

  it.each(cases)('answers %s with a problem+json 4xx and writes nothing', async (_name, method, path, headers, body, expected) => {
    const response = await raw(method, path, headers(), body);
    expect(response.status).toBe(expected);
    expect(response.headers['content-type']).toBe('application/problem+json');
    expect(response.headers['x-request-id']).toEqual(expect.any(String));
    const problem = JSON.parse(response.body) as { status: number; title: string; detail: string; instance: string };
    expect(problem).toMatchObject({ status: expected, instance: response.headers['x-request-id'] });
    expect(response.body).not.toMatch(/\bat \w|node_modules|PostgresError|stack/);
    expect(await writtenBy(response.headers['x-request-id'])).toBe(0);
  });
});
