/**
 * RDS IAM authentication tokens on `node:crypto` alone. A token is an AWS Signature V4 presigned URL of
 * `https://host:port/?Action=connect&DBUser=user` for the service `rds-db`, valid 900 s, without its
 * scheme: exactly what `@aws-sdk/rds-signer` returns (a unit test proves the two byte-identical), but
 * without the SDK's default credential chain, `@smithy/core` and `bowser`, which made up ~400 KiB of
 * every bundle and most of its import time, for one HMAC chain per new connection.
 */
import { createHash, createHmac } from 'node:crypto';

/** AWS credentials of the function itself (in Lambda: the execution role's, from the environment). */
export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

export interface RdsTokenOptions {
  readonly hostname: string;
  readonly port: number;
  /** The database login role (`DBUser`). */
  readonly username: string;
  readonly region: string;
}

const SERVICE = 'rds-db';
const ALGORITHM = 'AWS4-HMAC-SHA256';
const EXPIRES_SECONDS = 900;
/** SHA-256 of the empty body: a presigned GET signs no payload. */
const EMPTY_PAYLOAD_HASH = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** RFC 3986 encoding, as SigV4 requires (encodeURIComponent leaves `!'()*` alone). */
function escape(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** `key=value` pairs in key order, RFC 3986-encoded: SigV4's canonical query string. */
function encodeQuery(query: Record<string, string>): string {
  return Object.keys(query)
    .sort()
    .map((key) => `${escape(key)}=${escape(query[key]!)}`)
    .join('&');
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/** `20260101T120000Z` and `20260101` of a date, in UTC. */
function stamps(date: Date): { long: string; short: string } {
  const long = date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  return { long, short: long.slice(0, 8) };
}

/**
 * Signs an RDS IAM auth token for `options` with `credentials` at `date`. Pure: the same inputs give
 * the same token, which is what lets a test compare it with rds-signer's on a frozen clock.
 */
export function signRdsAuthToken(options: RdsTokenOptions, credentials: AwsCredentials, date: Date = new Date()): string {
  const { long, short } = stamps(date);
  const host = `${options.hostname}:${options.port}`;
  const scope = `${short}/${options.region}/${SERVICE}/aws4_request`;
  const query: Record<string, string> = {
    Action: 'connect',
    DBUser: options.username,
    'X-Amz-Algorithm': ALGORITHM,
    'X-Amz-Credential': `${credentials.accessKeyId}/${scope}`,
    'X-Amz-Date': long,
    'X-Amz-Expires': String(EXPIRES_SECONDS),
    'X-Amz-SignedHeaders': 'host',
  };
  if (credentials.sessionToken) query['X-Amz-Security-Token'] = credentials.sessionToken;
  const canonicalQuery = encodeQuery(query);
  const canonicalRequest = ['GET', '/', canonicalQuery, `host:${host}`, '', 'host', EMPTY_PAYLOAD_HASH].join('\n');
  const stringToSign = [ALGORITHM, long, scope, createHash('sha256').update(canonicalRequest, 'utf8').digest('hex')].join('\n');
  let key = hmac(`AWS4${credentials.secretAccessKey}`, short);
  for (const part of [options.region, SERVICE, 'aws4_request']) key = hmac(key, part);
  query['X-Amz-Signature'] = createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex');
  // The URL lists every parameter, the signature included, in key order (as the SDK's formatUrl does).
  return `${host}/?${encodeQuery(query)}`;
}

/**
 * A token source for postgres.js's `password` option: one fresh token per new connection, signed with
 * the given credentials. Throws when the credentials are missing, so a misconfigured function fails at
 * its first connection with a clear message instead of sending an unsigned login.
 */
export function rdsTokenSigner(
  options: RdsTokenOptions,
  credentials: AwsCredentials | undefined,
  now: () => Date = () => new Date(),
): () => string {
  return () => {
    if (!credentials) throw new Error('RDS IAM auth needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment');
    return signRdsAuthToken(options, credentials, now());
  };
}
