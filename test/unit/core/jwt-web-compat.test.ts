/**
 * functions/core/jwt-web-compat.ts, which the Lambda bundles use in place of aws-jwt-verify's own Node
 * layer (lib/constructs/lambda-bundling.ts), against that layer itself: the same members, the same
 * keys, the same verdict on valid and altered signatures for every algorithm the library accepts.
 */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import path from 'node:path';
import { NonRetryableFetchError } from 'aws-jwt-verify/error';
import { nodeWebCompat as ours } from '../../../functions/core/jwt-web-compat';

// The library's layer, by file (its package exports do not expose it; the bundles import it as `#node-web-compat`).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const library = (require(path.join(path.dirname(require.resolve('aws-jwt-verify')), '..', 'cjs', 'node-web-compat-node.js')) as {
  nodeWebCompat: typeof ours;
}).nodeWebCompat;

const b64url = (value: Buffer | string) => Buffer.from(value).toString('base64url');

/** A key pair and how the library signs with it for `alg`. */
function keysFor(alg: string): { publicKey: KeyObject; privateKey: KeyObject; digest: string | null; dsa?: 'ieee-p1363' } {
  if (alg.startsWith('RS')) return { ...generateKeyPairSync('rsa', { modulusLength: 2048 }), digest: `sha${alg.slice(2)}` };
  if (alg === 'EdDSA') return { ...generateKeyPairSync('ed25519'), digest: null };
  const curve = { ES256: 'prime256v1', ES384: 'secp384r1', ES512: 'secp521r1' }[alg]!;
  return { ...generateKeyPairSync('ec', { namedCurve: curve }), digest: `sha${alg.slice(2)}`, dsa: 'ieee-p1363' };
}

describe('the bundles\u2019 aws-jwt-verify Node layer', () => {
  it('has exactly the library layer\u2019s members, with the same fetch timeouts', () => {
    expect(Object.keys(ours).sort()).toEqual(Object.keys(library).sort());
    expect(ours.defaultFetchTimeouts).toEqual(library.defaultFetchTimeouts);
  });

  it.each(['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'EdDSA'])('gives the library\u2019s verdicts for %s', async (alg) => {
    const { publicKey, privateKey, digest, dsa } = keysFor(alg);
    const jwk = publicKey.export({ format: 'jwk' });
    const input = `${b64url(JSON.stringify({ alg, kid: 'k1' }))}.${b64url(JSON.stringify({ sub: 'x', exp: 1 }))}`;
    const signature = b64url(sign(digest, Buffer.from(input), dsa ? { key: privateKey, dsaEncoding: dsa } : privateKey));
    const altered = `${input.slice(0, -2)}AA`;
    const keyObject = ours.transformJwkToKeyObjectSync(jwk);
    expect(keyObject.export({ format: 'jwk' })).toEqual(library.transformJwkToKeyObjectSync(jwk).export({ format: 'jwk' }));
    expect((await ours.transformJwkToKeyObjectAsync(jwk)).export({ format: 'jwk' })).toEqual(jwk);
    for (const [jwsSigningInput, expected] of [
      [input, true],
      [altered, false],
    ] as const) {
      const args = { alg, keyObject, jwsSigningInput, signature };
      expect(ours.verifySignatureSync(args as never)).toBe(expected);
      expect(library.verifySignatureSync(args as never)).toBe(expected);
      expect(await ours.verifySignatureAsync(args as never)).toBe(expected);
    }
    // A signature from another key of the same kind is refused by both.
    const other = keysFor(alg);
    const foreign = b64url(sign(digest, Buffer.from(input), other.dsa ? { key: other.privateKey, dsaEncoding: other.dsa } : other.privateKey));
    expect(ours.verifySignatureSync({ alg, keyObject, jwsSigningInput: input, signature: foreign } as never)).toBe(false);
    expect(library.verifySignatureSync({ alg, keyObject, jwsSigningInput: input, signature: foreign } as never)).toBe(false);
  });

  it('throws where the library throws on an algorithm it does not know', () => {
    const { publicKey } = keysFor('RS256');
    const args = { alg: 'HS256', keyObject: publicKey, jwsSigningInput: 'a.b', signature: 'c' };
    expect(() => library.verifySignatureSync(args as never)).toThrow();
    expect(() => ours.verifySignatureSync(args as never)).toThrow();
  });

  it('decodes base64url segments and PEM keys as the library does', async () => {
    const text = '{"kid":"ü€","n":1}';
    expect(ours.parseB64UrlString(b64url(text))).toBe(library.parseB64UrlString(b64url(text)));
    const pem = keysFor('ES256').publicKey.export({ format: 'pem', type: 'spki' }).toString();
    expect(await ours.transformPemToJwk(pem)).toEqual(await library.transformPemToJwk(pem));
  });

  it('refuses to download anything itself: the functions give the verifier their own fetcher', async () => {
    await expect(ours.fetch('https://cognito-idp.eu-west-1.amazonaws.com/pool/.well-known/jwks.json')).rejects.toBeInstanceOf(NonRetryableFetchError);
  });

  it('unrefs its timers as the library does', () => {
    const timer = ours.setTimeoutUnref(() => undefined, 60_000);
    expect(timer.hasRef()).toBe(false);
    clearTimeout(timer);
  });
});
