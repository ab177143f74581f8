/**
 * Forged and broken tokens on every non-public route answer 401, at two depths: over HTTP through the
 * local stack (whose authorizer stands in for API Gateway's), and straight into each route's Lambda
 * handler, which must refuse them on its own (defence in depth: a Cognito authorizer does not check the
 * audience, for one). Forgeries that need the emulator's signing key use moto's published test key.
 */
import { createHash, createHmac, createPublicKey, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { CognitoIdentityProviderClient, InitiateAuthCommand } from '@aws-sdk/client-cognito-identity-provider';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { routeList, type LambdaHandler } from '../../functions/routes';
import { eventFor } from '../support/api';
import { startE2eStack, type E2eStack } from './support/stack';

let stack: E2eStack;
let emulatorKey: RsaNumbers;
let claims: Record<string, unknown>;
let kid: string;
const forged: Record<string, string | undefined> = {};

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** An RSA key as the numbers RS256 needs; moto's published key has only n, e and d (no CRT parts). */
interface RsaNumbers {
  n: bigint;
  e: bigint;
  d: bigint;
}
type SigningKey = KeyObject | RsaNumbers;

const big = (b64url: string) => BigInt(`0x${Buffer.from(b64url, 'base64url').toString('hex')}`);

function modPow(base: bigint, exponent: bigint, modulus: bigint): bigint {
  let result = 1n;
  let b = base % modulus;
  for (let e = exponent; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * b) % modulus;
    b = (b * b) % modulus;
  }
  return result;
}

/** RSASSA-PKCS1-v1_5 with SHA-256, by the numbers (RFC 8017 §8.2.1). */
function signWithNumbers(input: Buffer, key: RsaNumbers): Buffer {
  const size = Math.ceil(key.n.toString(16).length / 2);
  const digestInfo = Buffer.concat([Buffer.from('3031300d060960864801650304020105000420', 'hex'), createHash('sha256').update(input).digest()]);
  const encoded = Buffer.concat([Buffer.from([0, 1]), Buffer.alloc(size - digestInfo.length - 3, 0xff), Buffer.from([0]), digestInfo]);
  const signature = modPow(BigInt(`0x${encoded.toString('hex')}`), key.d, key.n).toString(16).padStart(size * 2, '0');
  return Buffer.from(signature, 'hex');
}

function signRs256(header: Record<string, unknown>, payload: Record<string, unknown>, key: SigningKey): string {
  const input = `${b64(header)}.${b64(payload)}`;
  const signature = 'n' in key ? signWithNumbers(Buffer.from(input), key) : sign('RSA-SHA256', Buffer.from(input), key);
  return `${input}.${signature.toString('base64url')}`;
}

let emulatorJwk: { n: string; e: string };

function motoSigningKey(): RsaNumbers {
  const dir = execFileSync('python3', ['-c', 'import moto, os; print(os.path.dirname(moto.__file__))'], { encoding: 'utf8' }).trim();
  const jwk = JSON.parse(gunzipSync(readFileSync(path.join(dir, 'cognitoidp', 'resources', 'jwks-private.json.gz'))).toString('utf8')) as {
    n: string;
    e: string;
    d: string;
  };
  emulatorJwk = { n: jwk.n, e: jwk.e };
  return { n: big(jwk.n), e: big(jwk.e), d: big(jwk.d) };
}

beforeAll(async () => {
  stack = await startE2eStack();
  const real = await stack.token('acme', 'org_admin');
  const [headerPart, payloadPart] = real.split('.');
  kid = (JSON.parse(Buffer.from(headerPart!, 'base64url').toString()) as { kid: string }).kid;
  claims = JSON.parse(Buffer.from(payloadPart!, 'base64url').toString()) as Record<string, unknown>;
  emulatorKey = motoSigningKey();
  const now = Math.floor(Date.now() / 1000);
  const header = { alg: 'RS256', typ: 'JWT', kid };
  const publicPem = createPublicKey({ key: { kty: 'RSA', ...emulatorJwk }, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString();
  const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const { exp: _exp, ...withoutExp } = claims;

  forged['the real token re-signed with the emulator key (control)'] = signRs256(header, claims, emulatorKey);
  forged['alg none'] = `${b64({ alg: 'none', typ: 'JWT', kid })}.${b64(claims)}.`;
  forged['HS256 signed with the public key'] = (() => {
    const input = `${b64({ alg: 'HS256', typ: 'JWT', kid })}.${b64(claims)}`;
    return `${input}.${createHmac('sha256', publicPem).update(input).digest('base64url')}`;
  })();
  forged['an unknown kid'] = signRs256({ ...header, kid: 'not-a-key' }, claims, stranger);
  forged['a tampered payload'] = `${headerPart}.${b64({ ...claims, 'custom:tenant_id': 'globex' })}.${real.split('.')[2]}`;
  forged['an expired token'] = signRs256(header, { ...claims, iat: now - 7200, auth_time: now - 7200, exp: now - 3600 }, emulatorKey);
  forged['a token without exp'] = signRs256(header, withoutExp, emulatorKey);
  forged['a wrong audience'] = signRs256(header, { ...claims, aud: 'another-app-client' }, emulatorKey);
  forged['a wrong issuer'] = signRs256(header, { ...claims, iss: 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Forged' }, emulatorKey);
  const account = stack.account('acme', 'org_admin');
  const auth = await new CognitoIdentityProviderClient({ region: stack.region, endpoint: stack.endpoint }).send(
    new InitiateAuthCommand({
      AuthFlow: 'USER_PASSWORD_AUTH',
      ClientId: stack.clientId,
      AuthParameters: { USERNAME: account.username, PASSWORD: account.password },
    }),
  );
  forged['an access token instead of an ID token'] = auth.AuthenticationResult!.AccessToken!;
});
afterAll(async () => {
  await stack?.stop();
});

const malformedHeaders: [string, string | undefined][] = [
  ['no Authorization header', undefined],
  ['a Basic credential', `Basic ${Buffer.from('org_admin:secret').toString('base64')}`],
  ['Bearer without a token', 'Bearer'],
  ['a token that is not a JWT', 'Bearer not-a-jwt'],
  ['a JWT without the Bearer scheme', 'PLACEHOLDER_RAW'],
];

const protectedRoutes = routeList.filter((r) => r.auth !== 'public');
const forgeries = () => Object.keys(forged).filter((name) => !name.includes('(control)'));

function pathOf(route: (typeof protectedRoutes)[number]): string {
  return route.path.replace('{tenantId}', 'acme').replace('{documentId}', randomUUID());
}

async function authorizationFor(name: string): Promise<string | undefined> {
  const m = malformedHeaders.find(([n]) => n === name);
  if (m) return m[1] === 'PLACEHOLDER_RAW' ? await stack.token('acme', 'org_admin') : m[1];
  return `Bearer ${forged[name]}`;
}

describe('over HTTP', () => {
  it('accepts the control token on every non-public route (not 401)', async () => {
    for (const route of protectedRoutes) {
      const response = await stack.fetch(pathOf(route), {
        method: route.method,
        headers: { authorization: `Bearer ${forged['the real token re-signed with the emulator key (control)']}`, 'content-type': 'application/json' },
        body: route.body ? JSON.stringify({ ...(route.body.examples as object[])[0], idempotencyKey: randomUUID() }) : undefined,
      });
      expect({ route: route.path, status: response.status === 401 ? 401 : 'not 401' }).toEqual({ route: route.path, status: 'not 401' });
    }
  });

  const names = () => [...forgeries(), ...malformedHeaders.map(([n]) => n)];
  it.each(['alg none', 'HS256 signed with the public key', 'an unknown kid', 'a tampered payload', 'an expired token',
    'a token without exp', 'a wrong audience', 'a wrong issuer', 'an access token instead of an ID token',
    ...malformedHeaders.map(([n]) => n)])('refuses %s with 401 problem+json on every non-public route', async (name) => {
    expect(names()).toContain(name);
    const authorization = await authorizationFor(name);
    for (const route of protectedRoutes) {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (authorization !== undefined) headers.authorization = authorization;
      const response = await stack.fetch(pathOf(route), {
        method: route.method,
        headers,
        body: route.body ? JSON.stringify((route.body.examples as object[])[0]) : undefined,
      });
      expect({ route: `${route.method} ${route.path}`, status: response.status }).toEqual({ route: `${route.method} ${route.path}`, status: 401 });
      expect(response.headers.get('content-type')).toBe('application/problem+json');
      expect(response.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
  });
});

describe('straight into each Lambda handler (no authorizer in front)', () => {
  async function invoke(route: (typeof protectedRoutes)[number], authorization: string | undefined) {
    // The same module the local server and the Lambda run (require: Jest's CommonJS registry).
    const module = require(path.join(__dirname, '../../functions', route.handler)) as { handler: LambdaHandler };
    const event: APIGatewayProxyEvent = eventFor(route, {
      pathParameters: Object.fromEntries([...route.path.matchAll(/\{([^}]+)\}/g)].map((m) => [m[1]!, m[1] === 'tenantId' ? 'acme' : randomUUID()])),
      body: route.body ? { ...(route.body.examples as object[])[0], idempotencyKey: randomUUID() } : undefined,
    });
    if (authorization !== undefined) event.headers.Authorization = authorization;
    return module.handler(event);
  }

  it('accepts the control token (not 401) and refuses every forgery with 401', async () => {
    for (const route of protectedRoutes) {
      const control = await invoke(route, `Bearer ${forged['the real token re-signed with the emulator key (control)']}`);
      expect({ route: route.path, control: control.statusCode === 401 ? 401 : 'not 401' }).toEqual({ route: route.path, control: 'not 401' });
      for (const name of [...forgeries(), ...malformedHeaders.map(([n]) => n)]) {
        const result = await invoke(route, await authorizationFor(name));
        expect({ route: `${route.method} ${route.path}`, name, status: result.statusCode }).toEqual({
          route: `${route.method} ${route.path}`,
          name,
          status: 401,
        });
      }
    }
  });
});
