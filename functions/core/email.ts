/**
 * What this API accepts as an email address: a pragmatic subset of RFC 5321 (no quoted local parts, no
 * IP literals), the form Cognito and mail providers accept. One pattern, used by the manifest's body
 * schemas (ajv, strict mode: a `pattern`, not ajv-formats) and by the domain functions that parse it.
 */
export const EMAIL_PATTERN =
  '^[^\\s@<>()[\\]\\\\,;:"]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$';

/** The longest address SMTP carries (RFC 5321 forward-path limit). */
export const EMAIL_MAX_LENGTH = 254;
