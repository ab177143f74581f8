/**
 * The local stack's user pool client against the emulator: configured like the deployed one
 * (lib/constructs/identity.ts) where moto supports it — writable attributes exclude the role, the
 * tenant and the email, and OAuth flows are off.
 */
import { randomUUID } from 'node:crypto';
import { CognitoIdentityProviderClient, DescribeUserPoolClientCommand } from '@aws-sdk/client-cognito-identity-provider';
import { EMULATOR_WRITABLE_ATTRIBUTES, provisionIdentity, type EmulatorAccess } from '../../bin/stack/identity';

describe('the local user pool client', () => {
  it('lets users write only harmless attributes and has OAuth off', async () => {
    // Prepare
    const access: EmulatorAccess = {
      endpoint: process.env.TEST_AWS_ENDPOINT_URL!,
      region: process.env.AWS_REGION ?? 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    };
    // Act
    const identity = await provisionIdentity(access, { poolName: `attrs-${randomUUID().slice(0, 8)}`, users: [], password: 'Unused-password-1' });
    // Assess
    const cognito = new CognitoIdentityProviderClient(access);
    const { UserPoolClient: client } = await cognito.send(
      new DescribeUserPoolClientCommand({ UserPoolId: identity.userPoolId, ClientId: identity.clientId }),
    );
    cognito.destroy();
    expect([...(client?.WriteAttributes ?? [])].sort()).toEqual([...EMULATOR_WRITABLE_ATTRIBUTES].sort());
    expect(client?.WriteAttributes).not.toEqual(expect.arrayContaining(['custom:role']));
    expect(client?.WriteAttributes?.some((a) => a === 'email' || a.startsWith('custom:'))).toBe(false);
    expect(client?.AllowedOAuthFlowsUserPoolClient ?? false).toBe(false);
    expect(client?.AllowedOAuthFlows ?? []).toEqual([]);
  });
});
