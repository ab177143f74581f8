/**
 * Timeouts of every AWS client the functions use (STS, S3, KMS, Cognito). A request timeout only warns
 * unless `throwOnRequestTimeout` is set (@smithy/node-http-handler ≥ 4.1): without it a frozen endpoint
 * holds the call for minutes. Sized so that a call and its one retry end inside the request deadline
 * (REQUEST_DEADLINE_MS, 8 s by default): 2 × (1 s to connect + 2.5 s to answer) plus the backoff.
 * A timeout rejects with `name: 'TimeoutError'`, which each client's error map answers with 503.
 */
export const AWS_REQUEST_HANDLER = { connectionTimeout: 1_000, requestTimeout: 2_500, throwOnRequestTimeout: true } as const;

/** One retry: a second slow attempt would only outlive the request deadline. */
export const AWS_MAX_ATTEMPTS = 2;
