/**
 * The storage endpoint frozen (a process that accepted the connections, then SIGSTOP, as a hung emulator
 * or a stalled AWS endpoint looks from the client): document create answers 503 problem+json with
 * Retry-After within the request deadline and commits nothing, while another tenant's reads, which touch
 * no storage, keep their normal latency (no lock and no pool starvation across the stall).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { StsClient } from '../../functions/core/aws-sts';
import { AWS_MAX_ATTEMPTS, AWS_REQUEST_HANDLER } from '../../functions/core/aws-timeouts';
import { route, type HandlerDependencies } from '../../functions/core/handler';
import type { Sql } from '../../functions/core/db';
import { createTenantStorage } from '../../functions/core/storage';
import { work as createDocument } from '../../functions/documents/create';
import { work as listDocuments } from '../../functions/documents/list';
import { routes } from '../../functions/routes';
import { eventFor, json, trustingAuthenticator } from '../support/api';
import { adminSql, createTenant, runtimeSql, uniqueTenantId, type TenantFixture } from '../support/db';

const DEADLINE_MS = 1500;

/** An HTTP server in its own process, frozen with SIGSTOP once it listens. */
async function frozenEndpoint(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [
    '-e',
    "const s=require('http').createServer((q,r)=>r.end('<x/>')).listen(0,'127.0.0.1',()=>console.log(s.address().port))",
  ]);
  const port = await new Promise<string>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim()));
    child.once('error', reject);
  });
  process.kill(child.pid!, 'SIGSTOP');
  return { child, url: `http://127.0.0.1:${port}` };
}

function p50(samples: number[]): number {
  const sorted = [...samples].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)]!;
}

describe('a frozen storage endpoint', () => {
  let admin: Sql;
  let db: Sql;
  let endpoint: { child: ChildProcess; url: string };
  let acme: TenantFixture;
  let globex: TenantFixture;

  beforeAll(async () => {
    admin = adminSql();
    db = runtimeSql({ max: 8 });
    acme = await createTenant(admin, uniqueTenantId('frozen-a'), 'pro');
    globex = await createTenant(admin, uniqueTenantId('frozen-b'), 'pro');
    endpoint = await frozenEndpoint();
  });
  afterAll(async () => {
    process.kill(endpoint.child.pid!, 'SIGCONT');
    endpoint.child.kill('SIGKILL');
    await Promise.all([admin.end(), db.end()]);
  });

  it('answers storage routes 503 within the deadline, commits nothing, and leaves another tenant\'s reads at their normal latency', async () => {
    const storage = createTenantStorage({
      bucket: 'tenant-documents',
      roleArn: 'arn:aws:iam::123456789012:role/tenant-access',
      region: 'us-east-1',
      endpoint: endpoint.url,
      sts: new StsClient({
        region: 'us-east-1',
        endpoint: endpoint.url,
        credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
        requestHandler: AWS_REQUEST_HANDLER,
        maxAttempts: AWS_MAX_ATTEMPTS,
      }),
    });
    const deps: Partial<HandlerDependencies> = {
      sql: () => db,
      authenticator: () => trustingAuthenticator,
      deadlineMs: () => DEADLINE_MS,
      storage: () => storage,
    };
    const create = route(routes.createDocument, createDocument, deps);
    // The other tenant's reads keep the default deadline: on a shared machine a read may be slow for reasons of its own.
    const list = route(routes.listDocuments, listDocuments, { ...deps, deadlineMs: undefined });
    const read = async () => {
      const started = performance.now();
      const result = await list(
        eventFor(routes.listDocuments, { pathParameters: { tenantId: globex.tenantId }, caller: { userId: globex.members.user, role: 'user', tenantId: globex.tenantId } }),
      );
      if (result.statusCode !== 200) throw new Error(result.body);
      return performance.now() - started;
    };
    const reads = async (n: number) => {
      const samples: number[] = [];
      for (let i = 0; i < n; i++) samples.push(await read());
      return samples;
    };
    await reads(5); // warm: prepared statements, connections
    const normal = p50(await reads(30));

    const started = performance.now();
    const creates = Array.from({ length: 4 }, () =>
      create(
        eventFor(routes.createDocument, {
          pathParameters: { tenantId: acme.tenantId },
          caller: { userId: acme.members.user, role: 'user', tenantId: acme.tenantId },
          body: { name: 'report.pdf', contentType: 'application/pdf', sizeBytes: 1024 },
        }),
      ).then((result) => ({ result, ms: performance.now() - started })),
    );
    const during = p50(await reads(30));
    const answered = await Promise.all(creates);

    for (const { result, ms } of answered) {
      expect(result.statusCode).toBe(503);
      expect(result.headers?.['Retry-After']).toBe('1');
      expect(json(result).status).toBe(503);
      expect(ms).toBeLessThan(DEADLINE_MS + 1000);
    }
    // Generous margin on a shared machine: 2× the normal p50 plus 5 ms of scheduling noise.
    process.stdout.write(`frozen storage: globex list p50 normal ${normal.toFixed(2)} ms, during ${during.toFixed(2)} ms, ratio ${(during / normal).toFixed(2)}\n`);
    expect(during).toBeLessThan(2 * normal + 5);

    // Rows and counters equal the 2xx answers: none.
    await new Promise((r) => setTimeout(r, 300));
    const [state] = await admin`
      select (select count(*)::int from app.documents where tenant_id = ${acme.tenantId}) as documents,
             (select coalesce(sum(used), 0)::int from app.usage_counters where tenant_id = ${acme.tenantId} and metric in ('documents', 'storage_bytes', 'api_requests')) as counted`;
    expect(state).toEqual({ documents: 0, counted: 0 });
  });
});
