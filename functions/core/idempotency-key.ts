/**
 * The Idempotency-Key rule and lifetime, apart from the machinery (core/idempotency.ts) so that the
 * OpenAPI document can state them without carrying it.
 */

/** 1–255 printable ASCII characters without spaces, as the `idempotencyKey` of usage events. */
export const IDEMPOTENCY_KEY_PATTERN = /^[!-~]{1,255}$/;
/** How long a stored answer is replayed (API.md: 24 h). */
export const IDEMPOTENCY_TTL_HOURS = 24;
