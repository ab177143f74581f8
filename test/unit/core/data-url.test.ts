/**
 * functions/core/data-url.ts decodes `data:` URLs as Node's fetch does, without fetch: each URL here is
 * read both ways and the bytes compared; where fetch fails, the decoder must fail too.
 */
import { dataUrlBytes, isDataUrl } from '../../../functions/core/data-url';

const viaFetch = async (url: string): Promise<Buffer> => Buffer.from(await (await fetch(url)).arrayBuffer());

const jwks = JSON.stringify({ keys: [{ kty: 'RSA', kid: 'k1', n: 'xyz_-', e: 'AQAB', alg: 'RS256', use: 'sig' }] });

const urls = [
  // As lib/constructs/identity.ts writes it.
  'data:application/json;base64,' + Buffer.from(jwks).toString('base64'),
  'data:application/json,' + encodeURIComponent(jwks),
  'data:application/json;charset=utf-8,' + encodeURIComponent('{"ü":"€"}'),
  'data:,plain%20text%2Cwith%zz%4',
  'DATA:text/plain;BASE64,aGVs bG8=',
  'data:;base64,aGVsbG8',
  'data:text/plain;base64,aGVsbG8=#fragment',
  'data:application/octet-stream;base64,' + Buffer.from([0, 255, 128, 10, 13]).toString('base64'),
  'data:text/plain;base64 ,aGk=',
  'data:text/plain,%E2%82%AC%',
];

describe('data: URLs without fetch', () => {
  it.each(urls)('decodes %s to the bytes fetch gives', async (url) => {
    expect(isDataUrl(url)).toBe(true);
    expect(dataUrlBytes(url).equals(await viaFetch(url))).toBe(true);
  });

  it.each(['data:text/plain;base64,aGVsbG8!', 'data:text/plain;base64,a', 'data:text/plain;base64,aGVsbG8===', 'data:no-comma'])(
    'fails on %s, as fetch does',
    async (url) => {
      await expect(viaFetch(url)).rejects.toThrow();
      expect(() => dataUrlBytes(url)).toThrow(TypeError);
    },
  );

  it('reads the deployed JWKS snapshot back to the same document', () => {
    const url = 'data:application/json;base64,' + Buffer.from(jwks).toString('base64');
    expect(JSON.parse(dataUrlBytes(url).toString('utf8'))).toEqual(JSON.parse(jwks));
  });

  it('tells data: URLs from others', () => {
    expect(isDataUrl('https://cognito-idp.eu-west-1.amazonaws.com/pool/.well-known/jwks.json')).toBe(false);
    expect(isDataUrl('http://127.0.0.1:4566/jwks.json')).toBe(false);
    expect(() => dataUrlBytes('http://example.com/,x')).toThrow(TypeError);
  });
});
