/**
 * The platform routes of the tenant lifecycle over HTTP on the local stack: onboarding (201, 409, 400),
 * reading (200, 404), suspension and resumption, a plan change, offboarding to `deleted` with the data
 * gone (rows, object versions, Cognito users, data key), and the refusal of anyone but a platform operator.
 */
import { randomUUID } from 'node:crypto';
import { CognitoIdentityProviderClient, ListUsersCommand } from '@aws-sdk/client-cognito-identity-provider';
import { ListObjectVersionsCommand, S3Client } from '@aws-sdk/client-s3';
import { signInByEmail } from '../../bin/stack/identity';
import type { Sql } from '../../functions/core/db';
import { adminSql } from '../support/db';
import { startE2eStack, type E2eStack } from './support/stack';

let stack: E2eStack;
let admin: Sql;
const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
const superadmin = { role: 'superadmin' as const };

beforeAll(async () => {
  [stack, admin] = await Promise.all([startE2eStack(), Promise.resolve(adminSql())]);
});

afterAll(async () => {
  await Promise.all([stack?.stop(), admin?.end()]);
});

const newId = (label: string) => `e2e-${label}-${randomUUID().slice(0, 8)}`;

interface TenantBody {
  id: string;
  name: string;
  planId: string;
  status: string;
  deletionReport?: { rows: Record<string, number>; objects: { versions: number; deleteMarkers: number }; users: number; dataKey: string };
}

async function onboard(id: string, planId = 'pro'): Promise<{ response: Response; email: string }> {
  const email = `first-admin@${id}.example`;
  const response = await stack.call('/api/tenants', { method: 'POST', as: superadmin, json: { id, name: `Tenant ${id}`, planId, admin: { email, name: 'First Admin' } } });
  return { response, email };
}

const tokenOf = (email: string) =>
  signInByEmail({ endpoint: stack.endpoint, region: stack.region, credentials }, { clientId: stack.clientId, email, password: stack.password });

const asToken = (path: string, token: string, init: { method?: string; json?: unknown } = {}) =>
  fetch(`${stack.url}${path}`, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${token}`, ...(init.json === undefined ? {} : { 'content-type': 'application/json' }) },
    body: init.json === undefined ? undefined : JSON.stringify(init.json),
  });

async function untilDeleted(id: string): Promise<TenantBody> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const response = await stack.call(`/api/tenants/${id}`, { as: superadmin });
    expect(response.status).toBe(200);
    const tenant = (await response.json()) as TenantBody;
    if (tenant.status === 'deleted' || Date.now() > deadline) return tenant;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe('the tenant lifecycle over HTTP', () => {
  it('onboards a tenant (201 with Location) whose first admin signs in at once and is served', async () => {
    const id = newId('new');
    const { response, email } = await onboard(id);

    expect(response.status).toBe(201);
    expect(response.headers.get('location')).toBe(`/api/tenants/${id}`);
    const body = (await response.json()) as { tenant: TenantBody; admin: { email: string; role: string; status: string } };
    expect(body.tenant).toMatchObject({ id, planId: 'pro', status: 'active' });
    expect(body.admin).toMatchObject({ email, role: 'org_admin', status: 'active' });
    const billing = await asToken(`/api/${id}/billing`, await tokenOf(email));
    expect(billing.status).toBe(200);
  });

  it('refuses an id in use (409) and an unknown plan (400), changing nothing', async () => {
    const id = newId('dup');
    expect((await onboard(id)).response.status).toBe(201);

    const again = await onboard(id);
    const unknownPlan = await onboard(newId('plan'), 'no-such-plan');

    expect(again.response.status).toBe(409);
    expect(again.response.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(unknownPlan.response.status).toBe(400);
    const [row] = await admin<{ count: number }[]>`select count(*)::int as count from app.tenants where plan_id = 'no-such-plan'`;
    expect(row!.count).toBe(0);
  });

  it("refuses a first admin who is another tenant's user (409) before making anything: no tenant row, no key", async () => {
    const taken = newId('taken');
    const { email } = await onboard(taken);
    const id = newId('reuse');

    const response = await stack.call('/api/tenants', {
      method: 'POST',
      as: superadmin,
      json: { id, name: `Tenant ${id}`, planId: 'pro', admin: { email } },
    });

    expect(response.status).toBe(409);
    expect(response.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(await response.text()).not.toContain(taken);
    expect(await admin`select 1 from app.tenants where id = ${id}`).toHaveLength(0);
    // The id stays free: onboarding it with a free email succeeds.
    expect((await onboard(id)).response.status).toBe(201);
  });

  it('reads a tenant (200) and answers 404 for one that does not exist', async () => {
    const id = newId('read');
    expect((await onboard(id)).response.status).toBe(201);

    const found = await stack.call(`/api/tenants/${id}`, { as: superadmin });
    const missing = await stack.call(`/api/tenants/${newId('none')}`, { as: superadmin });

    expect(found.status).toBe(200);
    expect(await found.json()).toMatchObject({ id, status: 'active', planId: 'pro' });
    expect(missing.status).toBe(404);
  });

  it('refuses a suspended tenant\'s member at the next request (403) and serves them again once resumed', async () => {
    const id = newId('susp');
    const { email } = await onboard(id);
    const token = await tokenOf(email);
    expect((await asToken(`/api/${id}/billing`, token)).status).toBe(200);

    const suspended = await stack.call(`/api/tenants/${id}`, { method: 'PATCH', as: superadmin, json: { status: 'suspended' } });
    const refused = await asToken(`/api/${id}/billing`, token);
    const resumed = await stack.call(`/api/tenants/${id}`, { method: 'PATCH', as: superadmin, json: { status: 'active' } });
    const served = await asToken(`/api/${id}/billing`, token);

    expect(suspended.status).toBe(200);
    expect(await suspended.json()).toMatchObject({ status: 'suspended' });
    expect(refused.status).toBe(403);
    expect(resumed.status).toBe(200);
    expect(served.status).toBe(200);
  });

  it('shows a plan change in the tenant\'s billing view at once', async () => {
    const id = newId('plan');
    const { email } = await onboard(id, 'free');
    const token = await tokenOf(email);

    const changed = await stack.call(`/api/tenants/${id}`, { method: 'PATCH', as: superadmin, json: { planId: 'pro' } });
    const billing = await asToken(`/api/${id}/billing`, token);

    expect(changed.status).toBe(200);
    expect(((await billing.json()) as { plan: { id: string } }).plan.id).toBe('pro');
  });

  it('offboards a tenant (202) to deleted with a deletion report, its token refused and its data gone; its id is never reused', async () => {
    const id = newId('off');
    const { email, response: createdResponse } = await onboard(id);
    const { admin: firstAdmin } = (await createdResponse.json()) as { admin: { userId: string } };
    const token = await tokenOf(email);
    const created = await asToken(`/api/${id}/documents`, token, { method: 'POST', json: { name: 'a.txt', contentType: 'text/plain', sizeBytes: 5 } });
    expect(created.status).toBe(201);
    const { upload } = (await created.json()) as { upload: { url: string; method: string; headers: Record<string, string> } };
    expect((await fetch(upload.url, { method: upload.method, headers: upload.headers, body: 'hello' })).status).toBe(200);

    const started = await stack.call(`/api/tenants/${id}`, { method: 'DELETE', as: superadmin });
    expect(started.status).toBe(202);
    expect(await started.json()).toMatchObject({ id, status: 'offboarding' });
    const tenant = await untilDeleted(id);

    expect(tenant.status).toBe('deleted');
    expect(tenant.deletionReport).toMatchObject({ dataKey: 'destroyed', users: 1 });
    expect(tenant.deletionReport!.objects.versions).toBeGreaterThanOrEqual(1);
    expect(JSON.stringify(tenant)).not.toContain(email);
    expect(JSON.stringify(tenant)).not.toContain(firstAdmin.userId);
    expect([401, 403]).toContain((await asToken(`/api/${id}/billing`, token)).status);
    const [rows] = await admin<{ members: number; documents: number; key: Buffer | null }[]>`
      select (select count(*)::int from app.members where tenant_id = ${id}) as members,
             (select count(*)::int from app.documents where tenant_id = ${id}) as documents,
             (select data_key_ciphertext from app.tenants where id = ${id}) as key`;
    expect(rows).toEqual({ members: 0, documents: 0, key: null });
    const s3 = new S3Client({ endpoint: stack.endpoint, region: stack.region, credentials, forcePathStyle: true });
    const versions = await s3.send(new ListObjectVersionsCommand({ Bucket: stack.bucket, Prefix: `tenants/${id}/` }));
    expect([...(versions.Versions ?? []), ...(versions.DeleteMarkers ?? [])]).toEqual([]);
    const cognito = new CognitoIdentityProviderClient({ endpoint: stack.endpoint, region: stack.region, credentials });
    const users = await cognito.send(new ListUsersCommand({ UserPoolId: stack.userPoolId, Filter: `email = "${email}"` }));
    expect(users.Users ?? []).toEqual([]);
    expect((await onboard(id)).response.status).toBe(409);
  });

  it('refuses every tenant platform route to anyone but a platform operator (403)', async () => {
    const asAdmin = { role: 'org_admin' as const, tenantId: 'acme' };
    const statuses = await Promise.all([
      stack.call('/api/tenants', { method: 'POST', as: asAdmin, json: { id: newId('x'), name: 'X', planId: 'pro', admin: { email: 'a@x.example' } } }),
      stack.call('/api/tenants/acme', { as: asAdmin }),
      stack.call('/api/tenants/acme', { method: 'PATCH', as: asAdmin, json: { status: 'suspended' } }),
      stack.call('/api/tenants/acme', { method: 'DELETE', as: asAdmin }),
    ]).then((responses) => responses.map((r) => r.status));

    expect(statuses).toEqual([403, 403, 403, 403]);
  });
});
