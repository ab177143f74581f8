/**
 * The bytes of a `data:` URL, decoded here as Node's `fetch` decodes them (the WHATWG data: URL processor:
 * percent-decoding, then forgiving base64 when the media type ends in `;base64`), without `fetch`.
 *
 * A deployment gives the functions their user pool's JWKS as a `data:` URL (lib/constructs/identity.ts).
 * Reading it with `fetch` made every container's first request load Node's fetch implementation (undici):
 * ~43 ms on this project's benchmark machine, for a string already in the environment.
 * test/unit/core/data-url.test.ts checks this against `fetch` itself.
 */

/** Whether `url` is a `data:` URL (scheme compared without case, as URL parsing does). */
export function isDataUrl(url: string): boolean {
  return /^data:/i.test(url.trimStart());
}

/** Decodes a `data:` URL; throws a TypeError where `fetch` would fail (no comma, invalid base64). */
export function dataUrlBytes(url: string): Buffer {
  const trimmed = url.trim();
  const hash = trimmed.indexOf('#');
  const whole = hash === -1 ? trimmed : trimmed.slice(0, hash);
  const comma = whole.indexOf(',');
  if (!isDataUrl(whole) || comma === -1) throw new TypeError('not a data: URL');
  const mediaType = whole.slice(5, comma);
  const body = percentDecode(whole.slice(comma + 1));
  if (!/;[\u0020]*base64[\u0020]*$/i.test(mediaType)) return body;
  // Forgiving base64: ASCII whitespace removed, at most two `=` at the end, a length that is not 1 mod 4.
  let text = body.toString('latin1').replace(/[\t\n\f\r ]/g, '');
  if (text.length % 4 === 0) text = text.replace(/={1,2}$/, '');
  if (text.length % 4 === 1 || /[^A-Za-z0-9+/]/.test(text)) throw new TypeError('invalid base64 in data: URL');
  return Buffer.from(text, 'base64');
}

const HEX = /^[0-9A-Fa-f]{2}$/;

function percentDecode(text: string): Buffer {
  const input = Buffer.from(text, 'utf8');
  const out = Buffer.alloc(input.length);
  let n = 0;
  for (let i = 0; i < input.length; i++) {
    const byte = input[i]!;
    const pair = byte === 0x25 ? input.toString('latin1', i + 1, i + 3) : '';
    if (pair.length === 2 && HEX.test(pair)) {
      out[n++] = parseInt(pair, 16);
      i += 2;
    } else {
      out[n++] = byte;
    }
  }
  return out.subarray(0, n);
}
