/**
 * Cross-origin resource sharing, one policy for every place that answers a browser: the Lambda wrapper,
 * the local server, and the values API Gateway's preflight methods and gateway responses are built from
 * (lib/constructs/api.ts). Only an exactly listed origin is ever named in `Access-Control-Allow-Origin`;
 * never `*`, and any other origin (or none) gets no `Access-Control-*` header at all. Pure functions.
 */

/** Request headers a browser may send cross-origin (besides the CORS-safelisted ones). */
export const CORS_ALLOWED_HEADERS: readonly string[] = ['authorization', 'content-type', 'idempotency-key', 'x-correlation-id'];

/**
 * Response headers a browser script may read besides the safelisted ones: the request id, a create's
 * location, the back-off and rate-limit/quota headers (see functions/core/metering.ts).
 */
export const CORS_EXPOSED_HEADERS: readonly string[] = [
  'x-request-id',
  'x-correlation-id',
  'location',
  'retry-after',
  'ratelimit-limit',
  'ratelimit-remaining',
  'ratelimit-reset',
  'ratelimit-policy',
  'x-quota-metric',
  'x-quota-limit',
  'x-quota-remaining',
  'x-quota-reset',
];

/** How long a browser may cache a preflight answer (browsers cap it: Chromium at 7200 s). */
export const CORS_MAX_AGE_SECONDS = 7200;

/** True only for an origin listed exactly (origins are compared as browsers serialise them: lowercase). */
export function isAllowedOrigin(origin: string | undefined, allowed: readonly string[]): origin is string {
  return origin !== undefined && origin !== '' && allowed.includes(origin.toLowerCase());
}

/**
 * Headers for an actual (non-preflight) answer. `Vary: Origin` is always sent, because the answer differs
 * by origin and a shared cache must not hand one origin's answer to another.
 */
export function corsHeaders(origin: string | undefined, allowed: readonly string[]): Record<string, string> {
  if (!isAllowedOrigin(origin, allowed)) return { vary: 'Origin' };
  return {
    'access-control-allow-origin': origin,
    'access-control-expose-headers': CORS_EXPOSED_HEADERS.join(', '),
    vary: 'Origin',
  };
}

/** Headers for a preflight (`OPTIONS`) answer on a path that takes `methods`. */
export function preflightHeaders(
  origin: string | undefined,
  allowed: readonly string[],
  methods: readonly string[],
): Record<string, string> {
  if (!isAllowedOrigin(origin, allowed)) return { vary: 'Origin' };
  return {
    'access-control-allow-origin': origin,
    'access-control-allow-methods': [...methods, 'OPTIONS'].join(', '),
    'access-control-allow-headers': CORS_ALLOWED_HEADERS.join(', '),
    'access-control-max-age': String(CORS_MAX_AGE_SECONDS),
    vary: 'Origin',
  };
}

/**
 * Adds the CORS headers of `origin` to an answer's headers. A header the answer already has under
 * another spelling of its name is replaced, so that each is sent once.
 */
export function withCors<T extends { headers?: Record<string, string | number | boolean> }>(
  result: T,
  origin: string | undefined,
  allowed: readonly string[],
): T {
  const cors = corsHeaders(origin, allowed);
  const names = new Set(Object.keys(cors));
  const kept = Object.fromEntries(Object.entries(result.headers ?? {}).filter(([k]) => !names.has(k.toLowerCase())));
  return { ...result, headers: { ...kept, ...cors } };
}

/**
 * The tenant bucket's one CORS rule, the same in AWS (lib/constructs/storage.ts) and in the emulator
 * (bin/stack/aws.ts): the allowed origins may PUT bytes to a presigned upload URL (Content-Type is the
 * one header the URL binds that a browser script sets; it sets Content-Length itself) and GET them from a
 * presigned download URL. S3 answers a foreign origin without CORS headers.
 */
export function bucketCorsRule(origins: readonly string[]) {
  return {
    AllowedOrigins: [...origins],
    AllowedMethods: ['PUT', 'GET', 'HEAD'] as ('PUT' | 'GET' | 'HEAD')[],
    // If-None-Match: the conditional write every presigned upload signs.
    AllowedHeaders: ['content-type', 'if-none-match'],
    ExposeHeaders: ['etag'],
    MaxAgeSeconds: CORS_MAX_AGE_SECONDS,
  };
}
