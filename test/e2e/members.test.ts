/**
 * Member management over HTTP on the local stack: add (the person signs in at once), read, change and
 * remove, with every status API.md names. Runs on a tenant of its own (its own Cognito pool), because
 * it demotes and removes that tenant's admins.
 */
import { createHash, randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { signInByEmail } from '../../bin/stack/identity';
import { startLocalStack, type LocalStack } from '../../bin/stack/local-stack';

const TENANT = 'members-e2e';
const OTHER = 'members-e2e-other';
let stack: LocalStack;
let admin: postgres.Sql;

beforeAll(async () => {
  const adminUrl = process.env.TEST_ADMIN_DATABASE_URL!;
  stack = await startLocalStack({
    database: { adminUrl, runtimeUrl: process.env.TEST_RUNTIME_DATABASE_URL!, controlUrl: process.env.TEST_CONTROL_DATABASE_URL! },
    emulatorEndpoint: process.env.TEST_AWS_ENDPOINT_URL!,
    storage: { bucket: process.env.TEST_TENANT_BUCKET!, roleArn: process.env.TEST_TENANT_ACCESS_ROLE_ARN! },
    name: 'tenant-sovereign-e2e-members',
    // Its KMS key and pool are its own: the shared database's export and offboarding jobs are not for it.
    runJobs: false,
    tenants: [
      { id: TENANT, name: 'Members test', planId: 'pro' },
      { id: OTHER, name: 'Members test, other tenant', planId: 'pro' },
    ],
    password: `Mb-${createHash('sha256').update(adminUrl).digest('base64url').slice(0, 20)}-1a`,
  });
  admin = postgres(adminUrl, { max: 1, onnotice: () => undefined });
});
afterAll(async () => {
  await admin?.end();
  await stack?.stop();
});

interface Member {
  userId: string;
  email: string;
  name?: string;
  role: string;
  status: string;
  createdAt: string;
}

async function call(token: string, path: string, init: { method?: string; json?: unknown } = {}): Promise<Response> {
  return fetch(`${stack.url}${path}`, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${token}`, ...(init.json === undefined ? {} : { 'content-type': 'application/json' }) },
    body: init.json === undefined ? undefined : JSON.stringify(init.json),
  });
}
const adminToken = () => stack.token(TENANT, 'org_admin');
const signInAs = (email: string) =>
  signInByEmail({ endpoint: stack.endpoint, region: stack.region, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }, {
    clientId: stack.clientId,
    email,
    password: stack.password,
  });
const uniqueEmail = (label: string) => `${label}-${randomUUID().slice(0, 8)}@members.example`;

async function addMember(token: string, body: Record<string, unknown>, tenantId = TENANT): Promise<Member> {
  const response = await call(token, `/api/${tenantId}/members`, { method: 'POST', json: body });
  expect(response.status).toBe(201);
  return (await response.json()) as Member;
}

describe('members over HTTP', () => {
  it('adds a member (201 with Location) who can sign in at once and is served with their role', async () => {
    const email = uniqueEmail('ada');
    const response = await call(await adminToken(), `/api/${TENANT}/members`, { method: 'POST', json: { email, role: 'user', name: 'Ada' } });
    expect(response.status).toBe(201);
    const member = (await response.json()) as Member;
    expect(member).toMatchObject({ email, name: 'Ada', role: 'user', status: 'active' });
    expect(response.headers.get('location')).toBe(`/api/${TENANT}/members/${member.userId}`);

    const token = await signInAs(email);
    expect((await call(token, `/api/${TENANT}/documents`)).status).toBe(200);
    // A user is not an org_admin: member management stays closed to them.
    expect((await call(token, `/api/${TENANT}/members/${member.userId}`)).status).toBe(403);

    const read = await call(await adminToken(), `/api/${TENANT}/members/${member.userId}`);
    expect(read.status).toBe(200);
    expect(await read.json()).toEqual(member);
  });

  it('writes exactly one audit event for the request that added the member', async () => {
    const member = await addMember(await adminToken(), { email: uniqueEmail('audit'), role: 'readonly' });
    const events = await admin<{ action: string; resource_type: string }[]>`
      select action, resource_type from app.audit_events where tenant_id = ${TENANT} and resource_id = ${member.userId}`;
    expect(events).toEqual([{ action: 'createMember', resource_type: 'member' }]);
  });

  it('refuses the same email twice in one tenant (409), creating nothing', async () => {
    const email = uniqueEmail('twice');
    await addMember(await adminToken(), { email, role: 'user' });
    const again = await call(await adminToken(), `/api/${TENANT}/members`, { method: 'POST', json: { email: email.toUpperCase(), role: 'readonly' } });
    expect(again.status).toBe(409);
    expect(again.headers.get('content-type')).toMatch(/problem\+json/);
    const [{ count }] = await admin<{ count: string }[]>`select count(*) from app.members where tenant_id = ${TENANT}`;
    const list = (await (await call(await adminToken(), `/api/${TENANT}/members?limit=100`)).json()) as { items: { email: string }[] };
    expect(list.items.filter((m) => m.email === email)).toHaveLength(1);
    expect(Number(count)).toBe(list.items.length);
  });

  it('refuses bad input with 400 and changes nothing', async () => {
    const token = await adminToken();
    for (const body of [{ email: 'not-an-email', role: 'user' }, { email: uniqueEmail('x'), role: 'owner' }, { email: uniqueEmail('x'), role: 'user', extra: 1 }]) {
      expect((await call(token, `/api/${TENANT}/members`, { method: 'POST', json: body })).status).toBe(400);
    }
    const target = await addMember(token, { email: uniqueEmail('patch400'), role: 'user' });
    expect((await call(token, `/api/${TENANT}/members/${target.userId}`, { method: 'PATCH', json: { status: 'gone' } })).status).toBe(400);
    expect((await call(token, `/api/${TENANT}/members/${target.userId}`, { method: 'PATCH', json: {} })).status).toBe(400);
  });

  it('applies a PATCH at the member’s next request', async () => {
    const email = uniqueEmail('patch');
    const member = await addMember(await adminToken(), { email, role: 'user' });
    const token = await signInAs(email);
    const create = () => call(token, `/api/${TENANT}/documents`, { method: 'POST', json: { name: 'a.txt', contentType: 'text/plain', sizeBytes: 1 } });
    expect((await create()).status).toBe(201);

    const patched = await call(await adminToken(), `/api/${TENANT}/members/${member.userId}`, { method: 'PATCH', json: { role: 'readonly' } });
    expect(patched.status).toBe(200);
    expect(await patched.json()).toMatchObject({ userId: member.userId, role: 'readonly', status: 'active' });
    // The same token, whose claims still say `user`: the member row decides.
    expect((await create()).status).toBe(403);

    await call(await adminToken(), `/api/${TENANT}/members/${member.userId}`, { method: 'PATCH', json: { status: 'inactive' } });
    expect((await call(token, `/api/${TENANT}/documents`)).status).toBe(403);
  });

  it('removes a member (204): their token is refused at the next request and they can no longer sign in', async () => {
    const email = uniqueEmail('gone');
    const member = await addMember(await adminToken(), { email, role: 'user' });
    const token = await signInAs(email);
    expect((await call(token, `/api/${TENANT}/documents`)).status).toBe(200);

    const removed = await call(await adminToken(), `/api/${TENANT}/members/${member.userId}`, { method: 'DELETE' });
    expect(removed.status).toBe(204);
    expect([401, 403]).toContain((await call(token, `/api/${TENANT}/documents`)).status);
    await expect(signInAs(email)).rejects.toThrow();
    expect((await call(await adminToken(), `/api/${TENANT}/members/${member.userId}`)).status).toBe(404);
  });

  it('answers 404 for a member of another tenant under its own path, and changes nothing there', async () => {
    const foreign = await addMember(await stack.token(OTHER, 'org_admin'), { email: uniqueEmail('foreign'), role: 'user' }, OTHER);
    const token = await adminToken();
    const path = `/api/${TENANT}/members/${foreign.userId}`;
    expect((await call(token, path)).status).toBe(404);
    expect((await call(token, path, { method: 'PATCH', json: { role: 'readonly' } })).status).toBe(404);
    expect((await call(token, path, { method: 'DELETE' })).status).toBe(404);
    expect((await call(token, `/api/${TENANT}/members/not-a-uuid`)).status).toBe(404);
    const [row] = await admin<{ role: string }[]>`select role from app.members where tenant_id = ${OTHER} and user_id = ${foreign.userId}`;
    expect(row).toEqual({ role: 'user' });
  });

  it('keeps the last active org_admin: demote, deactivate and remove → 409', async () => {
    // The seed admin of OTHER is its only org_admin.
    const token = await stack.token(OTHER, 'org_admin');
    const self = stack.account(OTHER, 'org_admin').sub;
    const path = `/api/${OTHER}/members/${self}`;
    const demote = await call(token, path, { method: 'PATCH', json: { role: 'user' } });
    expect(demote.status).toBe(409);
    expect(demote.headers.get('content-type')).toMatch(/problem\+json/);
    expect((await call(token, path, { method: 'PATCH', json: { status: 'inactive' } })).status).toBe(409);
    expect((await call(token, path, { method: 'DELETE' })).status).toBe(409);
    expect((await call(token, path)).status).toBe(200);
  });

  it('never leaves zero active org_admins when two admins demote each other at once', async () => {
    const seedAdmin = stack.account(TENANT, 'org_admin');
    // Make the second admin the only other one: every other org_admin of the tenant is demoted first.
    const second = await addMember(await adminToken(), { email: uniqueEmail('second'), role: 'org_admin' });
    const others = await admin<{ user_id: string }[]>`
      select user_id from app.members where tenant_id = ${TENANT} and role = 'org_admin' and status = 'active'
         and user_id not in (${seedAdmin.sub}, ${second.userId})`;
    for (const o of others) {
      expect((await call(await adminToken(), `/api/${TENANT}/members/${o.user_id}`, { method: 'PATCH', json: { role: 'user' } })).status).toBe(200);
    }
    const [firstToken, secondToken] = await Promise.all([adminToken(), signInAs(second.email)]);
    const [a, b] = await Promise.all([
      call(firstToken, `/api/${TENANT}/members/${second.userId}`, { method: 'PATCH', json: { role: 'user' } }),
      call(secondToken, `/api/${TENANT}/members/${seedAdmin.sub}`, { method: 'PATCH', json: { role: 'user' } }),
    ]);
    const statuses = [a.status, b.status].sort();
    // One wins; the other is refused (409 by the rule, or 403 when its caller was demoted first).
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect([403, 409]).toContain(statuses.find((s) => s !== 200));
    const [{ admins }] = await admin<{ admins: string }[]>`
      select count(*) as admins from app.members where tenant_id = ${TENANT} and role = 'org_admin' and status = 'active'`;
    expect(Number(admins)).toBe(1);
    // Put the seed admin back in charge for the other tests of this file.
    if (b.status === 200) {
      await call(secondToken, `/api/${TENANT}/members/${seedAdmin.sub}`, { method: 'PATCH', json: { role: 'org_admin' } });
    }
  });
});
