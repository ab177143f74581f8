/**
 * Exports over HTTP on the local stack: 202, the stack's job runner writes the bundle, GET answers it
 * ready with a presigned download of the tenant's own data, and another tenant's export id is 404.
 */
import { startE2eStack, type E2eStack } from './support/stack';

let stack: E2eStack;
beforeAll(async () => {
  stack = await startE2eStack();
});
afterAll(async () => {
  await stack?.stop();
});

interface ExportView {
  id: string;
  status: string;
  download: { url: string; expiresAt: string } | null;
}

async function readyExport(tenantId: string, id: string): Promise<ExportView> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const response = await stack.call(`/api/${tenantId}/exports/${id}`, { as: { role: 'org_admin', tenantId } });
    expect(response.status).toBe(200);
    const view = ((await response.json()) as { export: ExportView }).export;
    if (view.status !== 'pending' || Date.now() > deadline) return view;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe('exports over HTTP', () => {
  it('answers 202, becomes ready, and its download is a bundle of this tenant’s data only', async () => {
    const created = await stack.call('/api/acme/documents', {
      method: 'POST',
      as: { role: 'org_admin', tenantId: 'acme' },
      json: { name: 'export-me.txt', contentType: 'text/plain', sizeBytes: 5 },
    });
    expect(created.status).toBe(201);
    const { document, upload } = (await created.json()) as { document: { id: string }; upload: { url: string; headers: Record<string, string> } };
    expect((await fetch(upload.url, { method: 'PUT', headers: upload.headers, body: 'hello' })).status).toBe(200);

    const requested = await stack.call('/api/acme/exports', { method: 'POST', as: { role: 'org_admin', tenantId: 'acme' } });
    expect(requested.status).toBe(202);
    const { export: pending } = (await requested.json()) as { export: { id: string; status: string } };
    expect(pending.status).toBe('pending');

    const view = await readyExport('acme', pending.id);
    expect(view.status).toBe('ready');
    const bundle = await fetch(view.download!.url);
    expect(bundle.status).toBe(200);
    const lines = (await bundle.text()).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ type: 'export', tenantId: 'acme', exportId: pending.id });
    expect(lines.find((l) => l.type === 'tenant')).toMatchObject({ id: 'acme' });
    expect(lines.find((l) => l.type === 'document' && l.id === document.id)).toMatchObject({ bytesBase64: Buffer.from('hello').toString('base64') });
    const members = lines.filter((l) => l.type === 'member');
    expect(members.map((m) => m.email)).toContain(stack.account('acme', 'org_admin').email);
    expect(lines.some((l) => l.type === 'audit_event' && l.action === 'createExport' && l.resourceId === pending.id)).toBe(true);
    expect(JSON.stringify(lines)).not.toMatch(/globex/);
  });

  it('answers 404 for another tenant’s export id, and for one that is no UUID', async () => {
    const requested = await stack.call('/api/globex/exports', { method: 'POST', as: { role: 'org_admin', tenantId: 'globex' } });
    expect(requested.status).toBe(202);
    const { export: theirs } = (await requested.json()) as { export: { id: string } };
    const mine = await stack.call(`/api/acme/exports/${theirs.id}`, { as: { role: 'org_admin', tenantId: 'acme' } });
    expect(mine.status).toBe(404);
    expect(mine.headers.get('content-type')).toBe('application/problem+json');
    expect((await stack.call('/api/acme/exports/nope', { as: { role: 'org_admin', tenantId: 'acme' } })).status).toBe(404);
  });

  it('is for org_admins only (403 for a user)', async () => {
    expect((await stack.call('/api/acme/exports', { method: 'POST', as: { role: 'user', tenantId: 'acme' } })).status).toBe(403);
  });
});
