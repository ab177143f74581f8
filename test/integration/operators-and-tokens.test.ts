/**
 * The owner-run operators command and `npm run token -- --email` against real Postgres and the
 * emulator's Cognito: operators are made and unmade only there; any active user of the pool gets a
 * token by email, an unknown or disabled one does not.
 */
import { CognitoIdentityProviderClient } from '@aws-sdk/client-cognito-identity-provider';
import { addOperator, OperatorRefusedError, removeOperator } from '../../bin/operators';
import { signInByEmail, UnknownUserError } from '../../bin/stack/identity';
import type { Sql } from '../../functions/core/db';
import { adminSql, uniqueTenantId } from '../support/db';
import { LOCAL_PASSWORD, lifecycleWorld, type LifecycleWorld } from '../support/lifecycle';

describe('operators and tokens by email', () => {
  let admin: Sql;
  let w: LifecycleWorld;
  let cognito: CognitoIdentityProviderClient;
  const token = (email: string) => signInByEmail(w.access, { clientId: w.clientId, email, password: LOCAL_PASSWORD });
  const claims = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, string>;

  beforeAll(async () => {
    admin = adminSql();
    w = await lifecycleWorld(admin, 'operators');
    cognito = new CognitoIdentityProviderClient(w.access);
  });
  afterAll(async () => {
    cognito.destroy();
    await w.close();
    await admin.end();
  });

  it('prints a token for an active user created through the API, and refuses unknown and disabled users', async () => {
    const tenantId = uniqueTenantId('tok');
    const { userId } = await w.directory.createUser({ email: `Dana@${tenantId}.example`, tenantId, role: 'user' });
    expect(claims(await token(`dana@${tenantId}.example`))).toMatchObject({ sub: userId, 'custom:tenant_id': tenantId, 'custom:role': 'user' });
    await expect(token(`nobody@${tenantId}.example`)).rejects.toBeInstanceOf(UnknownUserError);
    await w.directory.disable(userId);
    await expect(token(`dana@${tenantId}.example`)).rejects.toBeInstanceOf(UnknownUserError);
  });

  it('makes and unmakes a platform operator, and never a member of a tenant', async () => {
    const d = { cognito, userPoolId: w.userPoolId, localPassword: LOCAL_PASSWORD };
    const email = `ops-${uniqueTenantId('o')}@platform.example`;
    const userId = await addOperator(admin, d, email);
    expect(await admin`select status from app.platform_operators where user_id = ${userId}`).toEqual([{ status: 'active' }]);
    expect(claims(await token(email))).toMatchObject({ sub: userId, 'custom:role': 'superadmin' });
    // Adding again changes nothing.
    expect(await addOperator(admin, d, email)).toBe(userId);

    const tenantId = uniqueTenantId('ops');
    const member = await w.directory.createUser({ email: `m@${tenantId}.example`, tenantId, role: 'org_admin' });
    await expect(addOperator(admin, d, `m@${tenantId}.example`)).rejects.toBeInstanceOf(OperatorRefusedError);
    expect(await admin`select 1 from app.platform_operators where user_id = ${member.userId}`).toHaveLength(0);

    await removeOperator(admin, d, email);
    expect(await admin`select 1 from app.platform_operators where user_id = ${userId}`).toHaveLength(0);
    await expect(token(email)).rejects.toBeInstanceOf(UnknownUserError);
  });
});
