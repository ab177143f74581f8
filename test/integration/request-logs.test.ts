/**
 * Log lines of concurrent requests in one process (as on the local server): every line a request
 * writes (the wrapper's request line, storage's AssumeRole line) carries that request's own keys, and
 * the correlation id a caller sends is echoed and stored in the audit event.
 */
import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { route, type HandlerDependencies } from '../../functions/core/handler';
import type { Sql } from '../../functions/core/db';
import { logger } from '../../functions/core/observability';
import { createTenantStorage } from '../../functions/core/storage';
import { work as createDocument } from '../../functions/documents/create';
import { work as getDocument } from '../../functions/documents/get';
import { work as listDocuments } from '../../functions/documents/list';
import { routes } from '../../functions/routes';
import { eventFor, trustingAuthenticator } from '../support/api';
import { adminSql, createTenant, runtimeSql, uniqueTenantId, type TenantFixture } from '../support/db';
import { emulatorStorage } from '../support/storage';

type Role = 'org_admin' | 'user' | 'readonly';

interface Sent {
  readonly correlationId: string;
  readonly tenantId: string;
  readonly userId: string;
  readonly role: Role;
  readonly routeId: string;
  status?: number;
  requestId?: string;
}

describe('log lines of concurrent requests', () => {
  let admin: Sql;
  let db: Sql;
  let deps: HandlerDependencies;
  let tenants: TenantFixture[];
  let lines: Record<string, unknown>[];
  const sent: Sent[] = [];

  beforeAll(async () => {
    admin = adminSql();
    db = runtimeSql({ max: 10 });
    deps = { sql: () => db, authenticator: () => trustingAuthenticator, storage: () => createTenantStorage(emulatorStorage()) };
    tenants = [await createTenant(admin, uniqueTenantId('logs-a')), await createTenant(admin, uniqueTenantId('logs-b'))];
    const storage = createTenantStorage(emulatorStorage());
    deps = { ...deps, storage: () => storage };
    const handlers = {
      listDocuments: route(routes.listDocuments, listDocuments, deps),
      getDocument: route(routes.getDocument, getDocument, deps),
      createDocument: route(routes.createDocument, createDocument, deps),
    };

    // Capture what the loggers write (functions/core/console-line.ts writes to process.stdout/stderr).
    const captured: string[] = [];
    const writes = [process.stdout, process.stderr].map((stream) => {
      const original = stream.write.bind(stream);
      stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
        const text = chunk.toString();
        if (text.startsWith('{')) captured.push(text);
        else return (original as (...a: unknown[]) => boolean)(chunk, ...rest);
        return true;
      }) as typeof stream.write;
      return () => (stream.write = original as typeof stream.write);
    });
    const level = logger.getLevelName();
    logger.setLogLevel('INFO');
    try {
      const requests: Promise<void>[] = [];
      for (let i = 0; i < 36; i++) {
        const t = tenants[i % 2]!;
        const role: Role = (['org_admin', 'user', 'readonly'] as const)[i % 3]!;
        const routeId = (['listDocuments', 'getDocument', 'createDocument'] as const)[Math.floor(i / 3) % 3]!;
        // Every fourth request names the other tenant in its path: refused with 403.
        const pathTenant = i % 4 === 3 ? tenants[(i + 1) % 2]!.tenantId : t.tenantId;
        const s: Sent = { correlationId: `c-${i}.${randomUUID()}`, tenantId: t.tenantId, userId: t.members[role], role, routeId };
        sent.push(s);
        const spec = routes[routeId];
        const event: APIGatewayProxyEvent = eventFor(spec, {
          pathParameters: { tenantId: pathTenant, ...(routeId === 'getDocument' ? { documentId: randomUUID() } : {}) },
          caller: { userId: s.userId, role, tenantId: t.tenantId } as never,
          ...(routeId === 'createDocument' ? { body: { name: 'Q3 report.pdf', contentType: 'application/pdf', sizeBytes: 10 } } : {}),
        });
        event.headers['X-Correlation-Id'] = s.correlationId;
        requests.push(
          handlers[routeId](event).then((result) => {
            s.status = result.statusCode;
            s.requestId = result.headers?.['x-request-id'] as string;
            expect(result.headers?.['x-correlation-id']).toBe(s.correlationId);
          }),
        );
      }
      await Promise.all(requests);
    } finally {
      logger.setLogLevel(level as never);
      writes.forEach((restore) => restore());
    }
    lines = captured.flatMap((c) => c.split('\n').filter(Boolean)).map((l) => JSON.parse(l) as Record<string, unknown>);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([admin.end(), db.end()]);
  });

  it('writes one request line per request with status, duration, tenant, user, role, route and any refusal reason', () => {
    const requestLines = lines.filter((l) => l.message === 'request');
    expect(requestLines).toHaveLength(sent.length);
    for (const s of sent) {
      const line = requestLines.find((l) => l.correlation_id === s.correlationId)!;
      expect(line).toEqual(
        expect.objectContaining({ request_id: s.requestId, status: s.status, action_type: s.routeId, user_id: s.userId, role: s.role, duration_ms: expect.any(Number) }),
      );
      if (s.status === 403) expect(line.reason).toEqual(expect.any(String));
      else expect(line.tenant_id).toBe(s.tenantId);
    }
    // The mix really had refusals and successes.
    expect(sent.map((s) => s.status)).toEqual(expect.arrayContaining([200, 201, 403, 404]));
  });

  it('gives every line, storage lines included, the keys of its own request', () => {
    const byCorrelation = new Map(sent.map((s) => [s.correlationId, s]));
    expect(lines.some((l) => l.message === 'Assumed the tenant-access role')).toBe(true);
    for (const line of lines) {
      const s = byCorrelation.get(line.correlation_id as string);
      expect(s).toBeDefined();
      expect(line).toEqual(expect.objectContaining({ request_id: s!.requestId, action_type: s!.routeId, user_id: s!.userId }));
      if (line.tenant_id !== undefined && line.message === 'request') expect(line.tenant_id).toBe(s!.tenantId);
    }
  });

  it('stores the correlation id in the audit event of a mutating request', async () => {
    const created = sent.filter((s) => s.routeId === 'createDocument' && s.status === 201);
    expect(created.length).toBeGreaterThan(0);
    for (const s of created) {
      const [event] = await admin`select correlation_id from app.audit_events where request_id = ${s.requestId!}`;
      expect(event?.correlation_id).toBe(s.correlationId);
    }
  });
});
