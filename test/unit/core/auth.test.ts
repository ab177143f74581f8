/**
 * The authenticator with a JWKS snapshot in a `data:` URL, as a deployment configures it (functions have
 * no internet path). No network: keys and tokens are made here.
 */
import { generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import { createAuthenticator } from '../../../functions/core/auth';
import { ServiceUnavailableError, UnauthorizedError } from '../../../functions/core/errors';

const POOL = 'us-east-1_Snapshot';
const CLIENT = 'app-client-id';
const ISSUER = `https://cognito-idp.us-east-1.amazonaws.com/${POOL}`;

function keyPair(): { privateKey: KeyObject; jwk: Record<string, unknown> } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { privateKey, jwk: publicKey.export({ format: 'jwk' }) as Record<string, unknown> };
}

function token(key: KeyObject, kid: string, claims: Record<string, unknown>): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const input = `${b64({ alg: 'RS256', typ: 'JWT', kid })}.${b64(claims)}`;
  return `${input}.${sign('RSA-SHA256', Buffer.from(input), key).toString('base64url')}`;
}

describe('createAuthenticator with a JWKS snapshot', () => {
  const signing = keyPair();
  const stranger = keyPair();
  const jwks = { keys: [{ ...signing.jwk, kid: 'k1', alg: 'RS256', use: 'sig' }] };
  const jwksUrl = `data:application/json;base64,${Buffer.from(JSON.stringify(jwks)).toString('base64')}`;
  const now = Math.floor(Date.now() / 1000);
  const sub = randomUUID();
  const claims = {
    sub, iss: ISSUER, aud: CLIENT, token_use: 'id', iat: now, auth_time: now, exp: now + 600,
    'custom:tenant_id': 'acme', 'custom:role': 'user',
  };

  it('accepts a token signed with a snapshot key and returns the caller', async () => {
    const auth = createAuthenticator({ userPoolId: POOL, clientId: CLIENT, jwksUrl });
    await expect(auth.authenticate(`Bearer ${token(signing.privateKey, 'k1', claims)}`)).resolves.toEqual({
      userId: sub,
      role: 'user',
      tenantId: 'acme',
    });
  });

  it('refuses a token with an unknown kid with 401, not 503', async () => {
    const auth = createAuthenticator({ userPoolId: POOL, clientId: CLIENT, jwksUrl });
    const forged = token(stranger.privateKey, 'k2', claims);
    await expect(auth.authenticate(`Bearer ${forged}`)).rejects.toBeInstanceOf(UnauthorizedError);
  });

  it('refuses a token signed by another key under a known kid, one without exp, and one for another client', async () => {
    const auth = createAuthenticator({ userPoolId: POOL, clientId: CLIENT, jwksUrl });
    const { exp: _exp, ...noExp } = claims;
    for (const bad of [
      token(stranger.privateKey, 'k1', claims),
      token(signing.privateKey, 'k1', noExp),
      token(signing.privateKey, 'k1', { ...claims, aud: 'another-client' }),
      token(signing.privateKey, 'k1', { ...claims, token_use: 'access' }),
    ]) {
      await expect(auth.authenticate(`Bearer ${bad}`)).rejects.toBeInstanceOf(UnauthorizedError);
    }
  });

  it('answers 503 when the keys cannot be loaded at all, and caches nothing', async () => {
    const auth = createAuthenticator({ userPoolId: POOL, clientId: CLIENT, jwksUrl: 'http://127.0.0.1:1/jwks.json' });
    const valid = `Bearer ${token(signing.privateKey, 'k1', claims)}`;
    await expect(auth.authenticate(valid)).rejects.toBeInstanceOf(ServiceUnavailableError);
    await expect(auth.authenticate(valid)).rejects.toBeInstanceOf(ServiceUnavailableError);
  });
});
