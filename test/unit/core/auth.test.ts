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

describe('createAuthenticator: verified tokens are cached until exp', () => {
  const sub = randomUUID();
  const EXP = 1_900_000_000;
  const claims = { sub, exp: EXP, 'custom:tenant_id': 'acme', 'custom:role': 'user' };
  const bearer = (t: string) => `Bearer ${t}`;

  /** A verifier spy that accepts `valid` (with `payload`) and refuses every other token. */
  function spyVerifier(valid: string, payload: Record<string, unknown> = claims) {
    return {
      verify: jest.fn(async (t: string) => {
        if (t !== valid) throw new UnauthorizedError('The token is not valid.');
        return payload;
      }),
    };
  }

  it('does not verify a cached token again', async () => {
    const verifier = spyVerifier('h.p.s');
    const auth = createAuthenticator({ userPoolId: POOL, clientId: CLIENT }, { verifier, now: () => (EXP - 60) * 1000 });
    const first = await auth.authenticate(bearer('h.p.s'));
    const second = await auth.authenticate(bearer('h.p.s'));
    expect(second).toEqual(first);
    expect(first).toEqual({ userId: sub, role: 'user', tenantId: 'acme' });
    expect(verifier.verify).toHaveBeenCalledTimes(1);
  });

  it('verifies again once the token reached its exp, and then refuses it', async () => {
    let now = (EXP - 1) * 1000;
    const verifier = spyVerifier('h.p.s');
    const auth = createAuthenticator({ userPoolId: POOL, clientId: CLIENT }, { verifier, now: () => now });
    await auth.authenticate(bearer('h.p.s'));
    now = EXP * 1000;
    verifier.verify.mockRejectedValueOnce(new UnauthorizedError('expired'));
    await expect(auth.authenticate(bearer('h.p.s'))).rejects.toBeInstanceOf(UnauthorizedError);
    expect(verifier.verify).toHaveBeenCalledTimes(2);
  });

  it('verifies a tampered token (another string) again and refuses it', async () => {
    const verifier = spyVerifier('h.p.s');
    const auth = createAuthenticator({ userPoolId: POOL, clientId: CLIENT }, { verifier, now: () => 0 });
    await auth.authenticate(bearer('h.p.s'));
    await expect(auth.authenticate(bearer('h.p.t'))).rejects.toBeInstanceOf(UnauthorizedError);
    expect(verifier.verify).toHaveBeenLastCalledWith('h.p.t');
    expect(verifier.verify).toHaveBeenCalledTimes(2);
  });

  it('never caches a refused token as valid', async () => {
    const verifier = spyVerifier('other.p.s');
    const auth = createAuthenticator({ userPoolId: POOL, clientId: CLIENT }, { verifier, now: () => 0 });
    await expect(auth.authenticate(bearer('h.p.s'))).rejects.toBeInstanceOf(UnauthorizedError);
    await expect(auth.authenticate(bearer('h.p.s'))).rejects.toBeInstanceOf(UnauthorizedError);
    expect(verifier.verify).toHaveBeenCalledTimes(2);
  });

  it('never caches a verified token whose claims are refused (no valid tenant)', async () => {
    const verifier = spyVerifier('h.p.s', { ...claims, 'custom:tenant_id': 'ACME' });
    const auth = createAuthenticator({ userPoolId: POOL, clientId: CLIENT }, { verifier, now: () => 0 });
    await expect(auth.authenticate(bearer('h.p.s'))).rejects.toBeInstanceOf(UnauthorizedError);
    await expect(auth.authenticate(bearer('h.p.s'))).rejects.toBeInstanceOf(UnauthorizedError);
    expect(verifier.verify).toHaveBeenCalledTimes(2);
  });

  it('keeps at most maxCachedTokens verified tokens', async () => {
    const verify = jest.fn(async (_t: string) => claims);
    const auth = createAuthenticator({ userPoolId: POOL, clientId: CLIENT }, { verifier: { verify }, maxCachedTokens: 2, now: () => 0 });
    for (const t of ['a.a.a', 'b.b.b', 'c.c.c']) await auth.authenticate(bearer(t));
    await auth.authenticate(bearer('c.c.c')); // cached
    await auth.authenticate(bearer('b.b.b')); // cached
    await auth.authenticate(bearer('a.a.a')); // evicted: verified again
    expect(verify.mock.calls.map(([t]) => t)).toEqual(['a.a.a', 'b.b.b', 'c.c.c', 'a.a.a']);
  });

  it('with the real verifier, still refuses a forged signature on the claims of a cached token', async () => {
    const signing = keyPair();
    const jwksUrl = `data:application/json;base64,${Buffer.from(JSON.stringify({ keys: [{ ...signing.jwk, kid: 'k1', alg: 'RS256', use: 'sig' }] })).toString('base64')}`;
    const now = Math.floor(Date.now() / 1000);
    const real = token(signing.privateKey, 'k1', {
      sub, iss: ISSUER, aud: CLIENT, token_use: 'id', iat: now, auth_time: now, exp: now + 600, 'custom:tenant_id': 'acme', 'custom:role': 'user',
    });
    const auth = createAuthenticator({ userPoolId: POOL, clientId: CLIENT, jwksUrl });
    await expect(auth.authenticate(bearer(real))).resolves.toEqual({ userId: sub, role: 'user', tenantId: 'acme' });
    await expect(auth.authenticate(bearer(real))).resolves.toEqual({ userId: sub, role: 'user', tenantId: 'acme' });
    // A forged signature on the same claims is another string: verified, and refused.
    await expect(auth.authenticate(bearer(`${real.slice(0, -4)}AAAA`))).rejects.toBeInstanceOf(UnauthorizedError);
  });
});
