/**
 * Timeouts of every AWS client the functions use (STS, S3, KMS, Cognito). A request timeout only warns
 * unless `throwOnRequestTimeout` is set (@smithy/node-http-handler ≥ 4.1): without it a frozen endpoint
 * holds the call for minutes. Sized so that one call ends inside the request deadline (REQUEST_DEADLINE_MS,
 * 8 s by default): 1 s to connect + 5 s to answer; a retry after a timeout is then cut short by the
 * deadline itself, which answers 503.
 * A timeout rejects with `name: 'TimeoutError'`, which each client's error map answers with 503.
 */
export const AWS_REQUEST_HANDLER = { connectionTimeout: 1_000, requestTimeout: 5_000, throwOnRequestTimeout: true } as const;

/** One retry: a second slow attempt would only outlive the request deadline. */
export const AWS_MAX_ATTEMPTS = 2;

/**
 * Cognito's writes are not idempotent on every emulator (moto keys a pool with email sign-in by sub, so a
 * retried AdminCreateUser whose first attempt did succeed makes a second user): no SDK retry there; the
 * domain functions are retry-safe at the request level instead (functions/core/cognito.ts).
 */
export const COGNITO_MAX_ATTEMPTS = 1;
