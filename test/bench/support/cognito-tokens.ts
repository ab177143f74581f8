/**
 * Cognito-shaped ID tokens for benchmarks, signed with a real RS256 key made here, and a local JWKS
 * endpoint that counts its downloads. The authenticator under test (`createAuthenticator` with
 * `jwksUrl`) verifies these tokens exactly as it verifies Cognito's: signature, issuer
 * (`https://cognito-idp.<region>.amazonaws.com/<poolId>`), audience (the app client), `token_use: id`
 * and `exp`. Nothing here is a mock of our own code; only the identity provider is stood in for.
 */
import { createPrivateKey, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface CognitoIdentity {
  /** `<region>_<id>`, as Cognito names pools. */
  readonly userPoolId: string;
  readonly clientId: string;
  readonly region: string;
  readonly issuer: string;
  readonly kid: string;
  /** The public half as a JWKS document (`{ keys: [...] }`). */
  readonly jwks: { readonly keys: readonly Record<string, unknown>[] };
  /** Signs an ID token for `claims` (merged over the Cognito defaults; `exp` 1 h from now). */
  idToken(claims: { sub: string; 'custom:tenant_id'?: string; 'custom:role': string } & Record<string, unknown>): string;
}

/** A fresh RSA-2048 key pair and a user pool identity around it. */
export function createCognitoIdentity(region = 'eu-west-1', poolSuffix = 'BenchPool1'): CognitoIdentity {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const userPoolId = `${region}_${poolSuffix}`;
  const clientId = randomUUID().replace(/-/g, '').slice(0, 26);
  const issuer = `https://cognito-idp.${region}.amazonaws.com/${userPoolId}`;
  const kid = randomUUID();
  const jwk = { ...(publicKey.export({ format: 'jwk' }) as Record<string, unknown>), kid, alg: 'RS256', use: 'sig' };
  const key: KeyObject = createPrivateKey(privateKey.export({ format: 'pem', type: 'pkcs8' }));
  return {
    userPoolId,
    clientId,
    region,
    issuer,
    kid,
    jwks: { keys: [jwk] },
    idToken(claims) {
      const now = Math.floor(Date.now() / 1000);
      const header = { kid, alg: 'RS256' };
      const payload = {
        aud: clientId,
        iss: issuer,
        token_use: 'id',
        auth_time: now,
        iat: now,
        exp: now + 3600,
        jti: randomUUID(),
        origin_jti: randomUUID(),
        event_id: randomUUID(),
        'cognito:username': claims.sub,
        ...claims,
      };
      const encode = (part: unknown) => Buffer.from(JSON.stringify(part)).toString('base64url');
      const signingInput = `${encode(header)}.${encode(payload)}`;
      const signature = sign('sha256', Buffer.from(signingInput), key).toString('base64url');
      return `${signingInput}.${signature}`;
    },
  };
}

export interface JwksServer {
  /** The URL to give the authenticator as `jwksUrl` (JWKS_URL). */
  readonly url: string;
  /** Downloads of the JWKS since start. */
  fetches(): number;
  close(): Promise<void>;
}

/** Serves `jwks` at `/.well-known/jwks.json` on 127.0.0.1 and counts every download. */
export function serveJwks(jwks: CognitoIdentity['jwks']): Promise<JwksServer> {
  let count = 0;
  const body = JSON.stringify(jwks);
  const server = http.createServer((req, res) => {
    if (req.url === '/.well-known/jwks.json' && req.method === 'GET') {
      count++;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    res.writeHead(404).end();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
        fetches: () => count,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
