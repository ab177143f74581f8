/**
 * CORS as a browser meets it, against the local stack (its default allowed origin, http://localhost:5173):
 * a preflight, then the actual request, then the upload PUT to the presigned URL and the download GET,
 * with the headers a browser sends. Foreign and missing origins get no Access-Control-* header from the
 * API; the bucket refuses a foreign origin's preflight (moto evaluates the bucket's CORS rule).
 */
import { GetBucketCorsCommand, S3Client } from '@aws-sdk/client-s3';
import { LOCAL_CORS_ORIGINS } from '../../bin/stack/local-stack';
import { startE2eStack, type E2eStack } from './support/stack';

const ORIGIN = 'http://localhost:5173';
const FOREIGN = 'https://evil.example';
let stack: E2eStack;

beforeAll(async () => {
  stack = await startE2eStack();
});

afterAll(async () => {
  await stack?.stop();
});

const accessControl = (response: Response) => [...response.headers.keys()].filter((k) => k.startsWith('access-control-'));

async function preflight(path: string, origin: string | undefined, method: string): Promise<Response> {
  const headers: Record<string, string> = { 'access-control-request-method': method, 'access-control-request-headers': 'authorization,content-type' };
  if (origin) headers.origin = origin;
  return stack.fetch(path, { method: 'OPTIONS', headers });
}

describe('CORS against the local stack', () => {
  it('allows http://localhost:5173 by default', () => {
    expect(LOCAL_CORS_ORIGINS).toEqual([ORIGIN]);
  });

  it('lets a browser app on the allowed origin create a document and upload and download its bytes', async () => {
    // Prepare: the preflight a browser sends before a JSON POST with a bearer token.
    const pre = await preflight('/api/acme/documents', ORIGIN, 'POST');
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(pre.headers.get('access-control-allow-methods')!.split(', ')).toContain('POST');
    expect(pre.headers.get('access-control-allow-headers')).toMatch(/authorization.*content-type/);
    expect(Number(pre.headers.get('access-control-max-age'))).toBeGreaterThan(0);

    // Act: the actual request.
    const bytes = Buffer.from('hello from the browser');
    const token = await stack.token('acme', 'user');
    const response = await stack.fetch(`/api/acme/documents`, {
      method: 'POST',
      headers: { origin: ORIGIN, authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'browser.txt', contentType: 'text/plain', sizeBytes: bytes.length }),
    });

    // Assess: readable by the app, with the headers it needs exposed.
    expect(response.status).toBe(201);
    expect(response.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    const exposed = response.headers.get('access-control-expose-headers')!.split(', ');
    expect(exposed).toEqual(expect.arrayContaining(['x-request-id', 'location', 'retry-after', 'ratelimit-limit', 'x-quota-limit']));
    const created = (await response.json()) as { document: { id: string }; upload: { url: string; method: string; headers: Record<string, string> } };
    expect(response.headers.get('location')).toBe(`/api/acme/documents/${created.document.id}`);

    // The upload's preflight at the bucket, then the upload as a browser sends it: Origin, and only the
    // headers a script may set (no Content-Length).
    const uploadPreflight = await fetch(created.upload.url, {
      method: 'OPTIONS',
      headers: { origin: ORIGIN, 'access-control-request-method': 'PUT', 'access-control-request-headers': 'content-type' },
    });
    expect(uploadPreflight.status).toBe(200);
    expect(uploadPreflight.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(uploadPreflight.headers.get('access-control-allow-methods')).toMatch(/PUT/);
    expect(uploadPreflight.headers.get('access-control-allow-headers')).toMatch(/content-type/);
    const { 'Content-Length': _length, ...scriptHeaders } = created.upload.headers;
    const put = await fetch(created.upload.url, { method: 'PUT', headers: { ...scriptHeaders, origin: ORIGIN }, body: bytes });
    expect(put.status).toBe(200);
    expect(put.headers.get('access-control-allow-origin')).toBe(ORIGIN);

    const got = await stack.fetch(`/api/acme/documents/${created.document.id}`, { headers: { origin: ORIGIN, authorization: `Bearer ${token}` } });
    expect(got.status).toBe(200);
    const { download } = (await got.json()) as { download: { url: string } };
    const bytesBack = await fetch(download.url, { headers: { origin: ORIGIN } });
    expect(bytesBack.status).toBe(200);
    expect(bytesBack.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(Buffer.from(await bytesBack.arrayBuffer()).equals(bytes)).toBe(true);
  });

  it("lets the allowed origin read the handlers' refusals too (403 of another tenant, 401 without a token)", async () => {
    const token = await stack.token('acme', 'user');
    const forbidden = await stack.fetch(`/api/globex/documents`, { headers: { origin: ORIGIN, authorization: `Bearer ${token}` } });
    expect(forbidden.status).toBe(403);
    expect(forbidden.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    await forbidden.arrayBuffer();
    const unauthorized = await stack.fetch(`/api/acme/documents`, { headers: { origin: ORIGIN } });
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    await unauthorized.arrayBuffer();
  });

  it.each([
    ['a foreign origin', FOREIGN],
    ['no origin', undefined],
  ])('gives %s no Access-Control-* header, on preflights, successes and errors', async (_label, origin) => {
    const pre = await preflight('/api/acme/documents', origin, 'POST');
    expect(pre.status).toBe(204);
    expect(accessControl(pre)).toEqual([]);

    const token = await stack.token('acme', 'user');
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (origin) headers.origin = origin;
    const ok = await stack.fetch(`/api/acme/documents`, { headers });
    expect(ok.status).toBe(200);
    expect(accessControl(ok)).toEqual([]);
    await ok.arrayBuffer();
    const missing = await stack.fetch(`/api/acme/nothing`, { headers });
    expect(missing.status).toBe(404);
    expect(accessControl(missing)).toEqual([]);
    await missing.arrayBuffer();
  });

  it("refuses a foreign origin's upload preflight at the bucket, whose rule names only the allowed origins", async () => {
    const token = await stack.token('acme', 'user');
    const response = await stack.fetch(`/api/acme/documents`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'foreign.txt', contentType: 'text/plain', sizeBytes: 3 }),
    });
    const { upload } = (await response.json()) as { upload: { url: string } };
    const foreign = await fetch(upload.url, {
      method: 'OPTIONS',
      headers: { origin: FOREIGN, 'access-control-request-method': 'PUT', 'access-control-request-headers': 'content-type' },
    });
    // A browser aborts the upload on a non-2xx preflight. (moto's HTTP layer still echoes the origin in
    // Access-Control-Allow-Origin on that 403, which S3 does not: the emulator cannot prove the header's
    // absence, so the rule itself is asserted below and in the synthesized template, test/infra.)
    expect(foreign.status).toBe(403);
    await foreign.arrayBuffer();

    const s3 = new S3Client({ region: stack.region, endpoint: stack.endpoint, forcePathStyle: true });
    try {
      const cors = await s3.send(new GetBucketCorsCommand({ Bucket: stack.bucket }));
      expect(cors.CORSRules).toEqual([
        expect.objectContaining({ AllowedOrigins: [ORIGIN], AllowedMethods: expect.arrayContaining(['PUT', 'GET']), AllowedHeaders: ['content-type', 'if-none-match'] }),
      ]);
    } finally {
      s3.destroy();
    }
  });
});
