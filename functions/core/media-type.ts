/**
 * THE media-type rule (RFC 9110 `type "/" subtype *( OWS ";" OWS parameter )`), in one place: the
 * manifest's `contentType` schema uses it as its `pattern`, and storage checks what it signs with it.
 */
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";

/** The rule as a JSON Schema / ECMAScript pattern source. */
export const MEDIA_TYPE_PATTERN = `^${TOKEN}/${TOKEN}(?:[ \\t]*;[ \\t]*${TOKEN}=(?:${TOKEN}|"[^"\\\\\\r\\n]*"))*$`;
/** The longest media type accepted (a column and header limit). */
export const MEDIA_TYPE_MAX_LENGTH = 255;

const MEDIA_TYPE = new RegExp(MEDIA_TYPE_PATTERN);

/** True for a media type such as `application/pdf` or `text/plain; charset=utf-8`. */
export function isMediaType(value: unknown): value is string {
  return typeof value === 'string' && value.length <= MEDIA_TYPE_MAX_LENGTH && MEDIA_TYPE.test(value);
}
