/**
 * Claims are not the last word: a member set inactive, a member whose role changed, and a suspended
 * tenant are refused at the next request, while their still-valid tokens keep their signature. Runs on a
 * tenant of its own (its own Cognito pool), so that suspending it disturbs no other test file.
 */
import { createHash } from 'node:crypto';
import postgres from 'postgres';
import { startLocalStack, type LocalStack } from '../../bin/stack/local-stack';
import { documentedFetch } from './support/openapi-conformance';

const TENANT = 'revoke-e2e';
let stack: LocalStack;
let admin: postgres.Sql;

beforeAll(async () => {
  const adminUrl = process.env.TEST_ADMIN_DATABASE_URL!;
  stack = await startLocalStack({
    database: { adminUrl, runtimeUrl: process.env.TEST_RUNTIME_DATABASE_URL!, controlUrl: process.env.TEST_CONTROL_DATABASE_URL! },
    emulatorEndpoint: process.env.TEST_AWS_ENDPOINT_URL!,
    storage: { bucket: process.env.TEST_TENANT_BUCKET!, roleArn: process.env.TEST_TENANT_ACCESS_ROLE_ARN! },
    name: 'tenant-sovereign-e2e-revocation',
    // Its KMS key and pool are its own: the shared database's export and offboarding jobs are not for it.
    runJobs: false,
    tenants: [{ id: TENANT, name: 'Revocation test', planId: 'pro' }],
    password: `Rv-${createHash('sha256').update(adminUrl).digest('base64url').slice(0, 20)}-1a`,
  });
  admin = postgres(adminUrl, { max: 1, onnotice: () => undefined });
});
afterAll(async () => {
  await admin?.end();
  await stack?.stop();
});

async function listAs(token: string): Promise<number> {
  const response = await documentedFetch(stack.url)(`/api/${TENANT}/documents`, { headers: { authorization: `Bearer ${token}` } });
  return response.status;
}

describe('revocation takes effect at the next request', () => {
  it('refuses a member set inactive, and serves them again once reactivated', async () => {
    const token = await stack.token(TENANT, 'user');
    const { sub } = stack.account(TENANT, 'user');
    expect(await listAs(token)).toBe(200);
    await admin`update app.members set status = 'inactive' where tenant_id = ${TENANT} and user_id = ${sub}`;
    expect(await listAs(token)).toBe(403);
    await admin`update app.members set status = 'active' where tenant_id = ${TENANT} and user_id = ${sub}`;
    expect(await listAs(token)).toBe(200);
  });

  it('refuses a token whose role claim no longer matches the member\'s role', async () => {
    const token = await stack.token(TENANT, 'readonly');
    const { sub } = stack.account(TENANT, 'readonly');
    expect(await listAs(token)).toBe(200);
    await admin`update app.members set role = 'user' where tenant_id = ${TENANT} and user_id = ${sub}`;
    expect(await listAs(token)).toBe(403);
    await admin`update app.members set role = 'readonly' where tenant_id = ${TENANT} and user_id = ${sub}`;
    expect(await listAs(token)).toBe(200);
  });

  it('refuses every member of a suspended tenant, and serves them again once reinstated', async () => {
    const tokens = await Promise.all((['org_admin', 'user', 'readonly'] as const).map((role) => stack.token(TENANT, role)));
    for (const token of tokens) expect(await listAs(token)).toBe(200);
    await admin`update app.tenants set status = 'suspended' where id = ${TENANT}`;
    try {
      for (const token of tokens) expect(await listAs(token)).toBe(403);
    } finally {
      await admin`update app.tenants set status = 'active' where id = ${TENANT}`;
    }
    for (const token of tokens) expect(await listAs(token)).toBe(200);
  });
});
