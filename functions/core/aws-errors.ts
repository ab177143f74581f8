/**
 * How an AWS SDK error (STS, S3, Cognito, KMS) becomes an answer: a dependency that cannot be reached,
 * is overloaded, or is not there for the whole container (a missing bucket, missing credentials) is a
 * 503 the caller may retry; a refusal about one request stays what it is. No SDK import, so that any
 * bundle can classify errors without carrying S3.
 */
import { AppError, ServiceUnavailableError } from './errors';
import { NETWORK_ERROR_CODES, isNetworkErrorCode } from './network-errors';

const SOCKET_ERROR_IN_MESSAGE = new RegExp(`\\b(?:${[...NETWORK_ERROR_CODES].join('|')})\\b`);
const UNAVAILABLE_ERROR_NAMES = new Set([
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'Throttling',
  'ThrottlingException',
  'SlowDown',
  'ServiceUnavailable',
  'InternalError',
  'RequestLimitExceeded',
  'TooManyRequestsException',
]);

/** True when STS or S3 cannot be reached or is overloaded (the caller may retry), not when it said no. */
export function isUnavailableError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const e = error as { code?: unknown; name?: unknown; errors?: unknown; $metadata?: { httpStatusCode?: number } };
  if (isNetworkErrorCode(e.code)) return true;
  if (typeof e.name === 'string' && UNAVAILABLE_ERROR_NAMES.has(e.name)) return true;
  const status = e.$metadata?.httpStatusCode;
  if (typeof status === 'number' && (status >= 500 || status === 429)) return true;
  // No HTTP answer at all, and a socket error named only in the message: the SDK's retry layer re-wraps
  // errors it does not recognise as `Error` (those of another realm, e.g. a VM context) and keeps just the text.
  if (status === undefined && error instanceof Error && SOCKET_ERROR_IN_MESSAGE.test(error.message)) return true;
  // Node's happy-eyeballs connect reports every address's failure in one AggregateError.
  return Array.isArray(e.errors) && e.errors.length > 0 && e.errors.every(isUnavailableError);
}

/**
 * True when the container cannot use storage at all, whatever the request: the bucket is gone (a
 * deployment or emulator fault, `NoSuchBucket`), or the SDK found no credentials to sign with (the
 * credential provider chain's `CredentialsProviderError`, e.g. "Unable to find environment variable
 * credentials"). Both are the operator's to fix and the caller's to retry, never a 500.
 */
export function isStorageMisconfiguredError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const name = (error as { name?: unknown }).name;
  return name === 'NoSuchBucket' || name === 'CredentialsProviderError';
}

/** A storage error as the answer the caller gets: 503 when storage is unreachable or unusable. */
export function toStorageError(error: unknown): unknown {
  if (error instanceof AppError) return error;
  if (isUnavailableError(error) || isStorageMisconfiguredError(error)) {
    return new ServiceUnavailableError('Document storage is not reachable; try again shortly.', { cause: error });
  }
  return error;
}
