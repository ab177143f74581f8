/**
 * The runtime's RDS IAM token (node:crypto) against the reference, `@aws-sdk/rds-signer`, on a frozen
 * clock with the same credentials: the tokens must be byte-identical. No network: both only sign.
 */
import { Signer } from '@aws-sdk/rds-signer';
import { parseConfig } from '../../../functions/core/config';
import { rdsTokenSigner, signRdsAuthToken, type AwsCredentials } from '../../../functions/core/rds-token';

const FROZEN = new Date('2026-03-07T09:05:04.321Z');
const target = { hostname: 'proxy-abc.proxy-cdefghij.eu-west-1.rds.amazonaws.com', port: 5432, username: 'app_runtime', region: 'eu-west-1' };
const keys: AwsCredentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
// A session token with the characters that must be percent-encoded (`/`, `+`, `=`).
const session: AwsCredentials = { ...keys, sessionToken: 'IQoJb3JpZ2luX2VjEP//////////wEaCXVzLWVhc3QtMSJH+abc/def==' };

async function referenceToken(credentials: AwsCredentials, options = target): Promise<string> {
  jest.useFakeTimers({ now: FROZEN, doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
  try {
    return await new Signer({ ...options, credentials }).getAuthToken();
  } finally {
    jest.useRealTimers();
  }
}

describe('signRdsAuthToken', () => {
  it('gives the same token as @aws-sdk/rds-signer for long-term keys', async () => {
    const expected = await referenceToken(keys);
    expect(signRdsAuthToken(target, keys, FROZEN)).toBe(expected);
    expect(expected).not.toContain('X-Amz-Security-Token');
  });

  it('gives the same token as @aws-sdk/rds-signer with a session token (Lambda credentials)', async () => {
    const expected = await referenceToken(session);
    expect(signRdsAuthToken(target, session, FROZEN)).toBe(expected);
    expect(expected).toContain('X-Amz-Security-Token=');
  });

  it('gives the same token for a user name and host that need encoding, on another port and region', async () => {
    const other = { hostname: 'db.internal', port: 6543, username: 'app control+ops', region: 'us-east-2' };
    expect(signRdsAuthToken(other, session, FROZEN)).toBe(await referenceToken(session, other));
  });

  it('is a presigned connect URL without the scheme, valid 900 s, for the rds-db service', () => {
    const token = signRdsAuthToken(target, keys, FROZEN);
    expect(token.startsWith(`${target.hostname}:5432/?Action=connect&DBUser=app_runtime&`)).toBe(true);
    expect(token).toContain('X-Amz-Credential=AKIDEXAMPLE%2F20260307%2Feu-west-1%2Frds-db%2Faws4_request');
    expect(token).toContain('X-Amz-Date=20260307T090504Z');
    expect(token).toContain('X-Amz-Expires=900');
    expect(token).toMatch(/X-Amz-Signature=[0-9a-f]{64}/);
  });

  it('changes the signature when the secret or the time changes', () => {
    const token = signRdsAuthToken(target, keys, FROZEN);
    expect(signRdsAuthToken(target, { ...keys, secretAccessKey: 'other' }, FROZEN)).not.toBe(token);
    expect(signRdsAuthToken(target, keys, new Date(FROZEN.getTime() + 1000))).not.toBe(token);
  });
});

describe('rdsTokenSigner', () => {
  it('signs a fresh token on every call with the clock it is given', () => {
    let now = FROZEN;
    const next = rdsTokenSigner(target, keys, () => now);
    const first = next();
    now = new Date(FROZEN.getTime() + 60_000);
    expect(first).toBe(signRdsAuthToken(target, keys, FROZEN));
    expect(next()).toBe(signRdsAuthToken(target, keys, now));
  });

  it('refuses to sign without credentials, naming the variables', () => {
    expect(() => rdsTokenSigner(target, undefined)()).toThrow(/AWS_ACCESS_KEY_ID/);
  });
});

describe('the function credentials in the configuration', () => {
  it('come from the Lambda environment variables, session token included', () => {
    const { aws } = parseConfig({ AWS_ACCESS_KEY_ID: 'AKID', AWS_SECRET_ACCESS_KEY: 'secret', AWS_SESSION_TOKEN: 'token' });
    expect(aws.credentials).toEqual({ accessKeyId: 'AKID', secretAccessKey: 'secret', sessionToken: 'token' });
    expect(rdsTokenSigner(target, aws.credentials, () => FROZEN)()).toBe(signRdsAuthToken(target, { accessKeyId: 'AKID', secretAccessKey: 'secret', sessionToken: 'token' }, FROZEN));
  });

  it('are absent when the key id or the secret is missing', () => {
    expect(parseConfig({ AWS_ACCESS_KEY_ID: 'AKID' }).aws.credentials).toBeUndefined();
    expect(parseConfig({ AWS_SECRET_ACCESS_KEY: 'secret' }).aws.credentials).toBeUndefined();
  });
});
