/**
 * aws-jwt-verify's Node compatibility layer (its `#node-web-compat` import, `dist/esm/node-web-compat-node.js`
 * in aws-jwt-verify 5.2.1, Apache-2.0), as the Lambda bundles use it: the same key handling and
 * signature checks on `node:crypto`, without the library's default HTTPS fetcher.
 *
 * Why: that layer imports the library's fetcher, and with it `node:https`, when the bundle loads (~2.5 ms
 * of every function's import). The functions never use that fetcher: functions/core/auth.ts gives the
 * verifier its own (the JWKS snapshot is a `data:` URL when deployed; the emulator's URL is read with
 * `fetch`). Here `fetch` refuses instead, so a call that would bypass auth.ts's fetcher fails closed.
 *
 * Substituted at bundling time by lib/constructs/lambda-bundling.ts (an esbuild alias of
 * `#node-web-compat`); tests and the local stack run the library's own. test/unit/core/jwt-web-compat.test.ts
 * checks every member against the library's (same keys, same verdicts on valid and altered signatures
 * for every algorithm it supports), and test/infra/bundling.test.ts verifies and refuses real tokens in
 * the synthesized bundles.
 */
import { createPublicKey, createVerify, verify, type JsonWebKey, type KeyObject } from 'node:crypto';
import { NonRetryableFetchError } from 'aws-jwt-verify/error';

/** OpenSSL digest per JWT algorithm, as the library maps them (ECDSA goes through the same names). */
const DIGEST: Readonly<Record<string, string>> = {
  RS256: 'RSA-SHA256',
  RS384: 'RSA-SHA384',
  RS512: 'RSA-SHA512',
  ES256: 'RSA-SHA256',
  ES384: 'RSA-SHA384',
  ES512: 'RSA-SHA512',
};

interface SignatureCheck {
  readonly alg: string;
  readonly keyObject: KeyObject;
  readonly jwsSigningInput: string;
  readonly signature: string;
}

function verifySignatureSync({ alg, keyObject, jwsSigningInput, signature }: SignatureCheck): boolean {
  if (alg === 'EdDSA') return verify(null, Buffer.from(jwsSigningInput), keyObject, Buffer.from(signature, 'base64'));
  const digest = DIGEST[alg];
  // The library indexes its table with any alg; an unknown one fails in createVerify. Same here.
  return createVerify(digest as string)
    .update(jwsSigningInput)
    .verify({ key: keyObject, dsaEncoding: 'ieee-p1363' }, signature, 'base64');
}

export const nodeWebCompat = {
  fetch: async (uri: string): Promise<ArrayBuffer> => {
    throw new NonRetryableFetchError(uri, 'no default fetcher in the function bundles: auth.ts gives the verifier its own');
  },
  transformJwkToKeyObjectSync: (jwk: JsonWebKey): KeyObject => createPublicKey({ key: jwk, format: 'jwk' }),
  transformJwkToKeyObjectAsync: async (jwk: JsonWebKey): Promise<KeyObject> => createPublicKey({ key: jwk, format: 'jwk' }),
  parseB64UrlString: (b64: string): string => Buffer.from(b64, 'base64').toString('utf8'),
  verifySignatureSync,
  verifySignatureAsync: async (args: SignatureCheck): Promise<boolean> => verifySignatureSync(args),
  defaultFetchTimeouts: { socketIdle: 1500, response: 3000 },
  setTimeoutUnref: (...args: Parameters<typeof setTimeout>): NodeJS.Timeout => setTimeout(...args).unref(),
  transformPemToJwk: async (pem: string): Promise<JsonWebKey> =>
    createPublicKey({ key: Buffer.from(pem), format: 'pem' }).export({ format: 'jwk' }),
};
