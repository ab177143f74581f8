/**
 * Tenant-scoped S3 storage. Every S3 request and every presigned URL is signed with credentials from
 * `STS AssumeRole` on the tenant-access role **with a session policy for that one tenant**
 * (`storage-policy.ts`), so a bug in a handler that builds another tenant's key still gets AccessDenied
 * from S3. There is no unscoped S3 client in the runtime.
 *
 * Credentials are cached per tenant (one STS call per tenant per container and credential lifetime);
 * concurrent first requests of a tenant share one STS call; a failed call caches nothing. Keys are
 * `tenants/{tenantId}/documents/{documentId}` and built only from a slug tenant id and a server-generated
 * UUID: anything else is refused before any AWS call.
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { config, ConfigError, required } from './config';
import { AppError, BadRequestError, PayloadTooLargeError, ServiceUnavailableError, UnauthorizedError } from './errors';
import { isMediaType } from './media-type';
import { NETWORK_ERROR_CODES, isNetworkErrorCode } from './network-errors';
import { captureClient, log } from './observability';
import { tenantPrefix, tenantSessionPolicy } from './storage-policy';
import { assertTenantId, isUuid } from './tenant';

/** The largest object a single presigned PUT can upload (S3's limit for one PUT: 5 GiB). */
export const MAX_UPLOAD_BYTES = 5 * 1024 ** 3;
/** S3 refuses presigned URLs that live longer than 7 days; we allow at most 15 minutes. */
export const MAX_PRESIGN_SECONDS = 900;
/** Above this share of the packed session-policy budget, STS is getting close to refusing the call. */
export const PACKED_POLICY_WARN_PERCENT = 50;

export interface TenantStorageOptions {
  readonly bucket: string;
  /** The tenant-access role; it is only ever assumed with a tenant's session policy. */
  readonly roleArn: string;
  readonly region: string;
  /** An emulator endpoint (moto, LocalStack) for STS and S3; unset in AWS. */
  readonly endpoint?: string;
  /** Lifetime of the scoped credentials, 900–43200 s. @default 3600 */
  readonly credentialSeconds?: number;
  /** Refresh cached credentials this long before they expire. @default 300 */
  readonly refreshBeforeSeconds?: number;
  /** Lifetime of presigned URLs, at most 900 s. @default 900 */
  readonly presignSeconds?: number;
  /** The STS client to use (tests add middleware to it). @default one client for `region`/`endpoint` */
  readonly sts?: STSClient;
  /** Milliseconds since the epoch; injectable so tests can move time. @default Date.now */
  readonly now?: () => number;
  /** @default 'aws' */
  readonly partition?: string;
}

export interface PresignedUpload {
  readonly url: string;
  readonly method: 'PUT';
  /** Headers the client must send unchanged: they are part of the signature. */
  readonly headers: Readonly<Record<string, string>>;
  /** ISO 8601. */
  readonly expiresAt: string;
}

export interface PresignedDownload {
  readonly url: string;
  /** ISO 8601. */
  readonly expiresAt: string;
}

export interface StoredObjectInfo {
  readonly sizeBytes: number;
  readonly contentType: string | undefined;
}

export interface StoredObject {
  readonly documentId: string;
  readonly sizeBytes: number;
  readonly lastModified: string | undefined;
}

/** One tenant's documents in S3. Every method validates its input before any AWS call. */
export interface TenantStorage {
  readonly tenantId: string;
  /** A URL that takes one HTTP PUT of exactly `sizeBytes` bytes of `contentType`. */
  presignUpload(documentId: string, object: { contentType: string; sizeBytes: number }): Promise<PresignedUpload>;
  /** A URL that returns the object as an attachment named `fileName` (the user's name, only metadata). */
  presignDownload(documentId: string, options: { fileName: string; contentType?: string }): Promise<PresignedDownload>;
  /** The object's size and type, or `null` when there is no such object. */
  head(documentId: string): Promise<StoredObjectInfo | null>;
  /** Deletes the object; deleting a missing object succeeds. */
  delete(documentId: string): Promise<void>;
  /** The tenant's stored documents, a page at a time (`limit` 1–1000, default 1000). */
  list(options?: { limit?: number; cursor?: string }): Promise<{ items: StoredObject[]; nextCursor: string | null }>;
}

export interface TenantStorageProvider {
  /**
   * The storage of `tenantId`, acting for `userId` (logged with the STS session that this call may open).
   * Validates both ids and makes no AWS call; credentials are fetched by the first operation.
   */
  forTenant(tenantId: string, userId: string): TenantStorage;
}

/** The S3 key of a document: only a slug tenant id and a UUID, never anything a user typed. */
export function documentKey(tenantId: string, documentId: string): string {
  if (!isUuid(documentId)) throw new BadRequestError('The document id is not valid.');
  return `${tenantPrefix(tenantId)}documents/${documentId}`;
}

/**
 * The RoleSessionName of a tenant's STS session: the tenant id (a slug of 3–40 characters, all within
 * STS's `[\w+=,.@-]{2,64}`). CloudTrail shows it as the session's principal. Never a user: the session
 * is cached and shared by every request of the tenant, so a user's name would attribute later users'
 * S3 actions to whoever opened it. Who acted is in our audit events and logs.
 */
export function roleSessionName(tenantId: string): string {
  assertTenantId(tenantId);
  return tenantId;
}

// Controls (C0, DEL, C1) and bidirectional overrides (which can disguise `exe` as `pdf`) never reach a header.
const UNSAFE_NAME_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * A `Content-Disposition: attachment` value for a user's file name (RFC 6266): an ASCII `filename`
 * fallback with anything risky replaced by `_`, and the exact name as RFC 8187 `filename*`. Path
 * separators become `_` because the name is a label, never a path.
 */
export function contentDisposition(fileName: string): string {
  const cleaned =
    typeof fileName === 'string'
      ? fileName.replace(LONE_SURROGATE, '\uFFFD').replace(UNSAFE_NAME_CHARACTERS, '').replace(/[/\\]/g, '_').trim()
      : '';
  if (cleaned === '' || cleaned.length > 255) throw new BadRequestError('The file name is not valid.');
  // `%` too: some browsers percent-decode the plain parameter.
  const fallback = cleaned.replace(/[^\x20-\x7e]|["%;\\]/g, '_');
  const encoded = encodeURIComponent(cleaned).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}

function assertContentType(contentType: unknown): string {
  if (!isMediaType(contentType)) {
    throw new BadRequestError('The content type is not valid.');
  }
  return contentType;
}

function assertSize(sizeBytes: unknown): number {
  if (typeof sizeBytes !== 'number' || !Number.isSafeInteger(sizeBytes) || sizeBytes < 1) {
    throw new BadRequestError('The size must be a whole number of bytes, at least 1.');
  }
  if (sizeBytes > MAX_UPLOAD_BYTES) throw new PayloadTooLargeError('The document is too large for one upload.');
  return sizeBytes;
}

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

function toStorageError(error: unknown): unknown {
  if (error instanceof AppError) return error;
  if (isUnavailableError(error)) {
    return new ServiceUnavailableError('Document storage is not reachable; try again shortly.', { cause: error });
  }
  return error;
}

/** Scoped credentials of one STS session. */
export interface TenantCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly expiration: Date;
}

/**
 * One `AssumeRole` of the tenant-access role, always with the tenant's session policy: the only way this
 * code obtains S3 credentials. Exported for the deployed smoke test, which must hold raw scoped
 * credentials to try another tenant's prefix; the runtime goes through {@link createTenantStorage}.
 */
export async function assumeTenantRole(
  sts: STSClient,
  params: {
    readonly roleArn: string;
    readonly bucket: string;
    readonly tenantId: string;
    readonly userId: string;
    readonly durationSeconds: number;
    readonly partition?: string;
  },
): Promise<TenantCredentials> {
  const policy = JSON.stringify(tenantSessionPolicy(params.bucket, params.tenantId, params.partition));
  const output = await sts.send(
    new AssumeRoleCommand({
      RoleArn: params.roleArn,
      RoleSessionName: roleSessionName(params.tenantId),
      DurationSeconds: params.durationSeconds,
      Policy: policy,
    }),
  );
  const c = output.Credentials;
  if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !c.Expiration) {
    throw new Error('AssumeRole answered without complete credentials');
  }
  // Credentials are never logged; the policy size tells us how close we are to STS's limit.
  const packed = output.PackedPolicySize;
  // The user whose request opened the session: in our logs, since the session name carries only the tenant.
  const fields = {
    tenant_id: params.tenantId,
    opened_by_user_id: params.userId,
    packed_policy_size_percent: packed,
    expires_at: c.Expiration.toISOString(),
  };
  if (typeof packed === 'number' && packed > PACKED_POLICY_WARN_PERCENT) {
    log().warn('The tenant session policy uses more than half of the packed policy size', fields);
  } else {
    log().info('Assumed the tenant-access role', fields);
  }
  return {
    accessKeyId: c.AccessKeyId,
    secretAccessKey: c.SecretAccessKey,
    sessionToken: c.SessionToken,
    expiration: c.Expiration,
  };
}

interface CachedSession {
  readonly client: S3Client;
  readonly expiresAtMs: number;
  /** After this instant the session is replaced: it might not outlive a URL signed now. */
  readonly refreshAtMs: number;
}

/** Shared by STS and every scoped S3 client: a Lambda must not hang on an unreachable dependency. */
const REQUEST_HANDLER = { connectionTimeout: 2_000, requestTimeout: 10_000 };

/**
 * Creates the storage of a container. Validates the settings up front: the refresh margin is the larger
 * of `refreshBeforeSeconds` and `presignSeconds`, so that a presigned URL never outlives the session that
 * signed it (a URL dies with its credentials, whatever its `X-Amz-Expires` says), and the credential
 * lifetime must exceed that margin.
 */
export function createTenantStorage(options: TenantStorageOptions): TenantStorageProvider {
  const credentialSeconds = options.credentialSeconds ?? 3600;
  const presignSeconds = options.presignSeconds ?? MAX_PRESIGN_SECONDS;
  const refreshBeforeSeconds = options.refreshBeforeSeconds ?? 300;
  const marginSeconds = Math.max(refreshBeforeSeconds, presignSeconds);
  if (!Number.isInteger(presignSeconds) || presignSeconds < 1 || presignSeconds > MAX_PRESIGN_SECONDS) {
    throw new ConfigError(`presignSeconds must be an integer from 1 to ${MAX_PRESIGN_SECONDS}`);
  }
  if (!Number.isInteger(credentialSeconds) || credentialSeconds < 900 || credentialSeconds > 43200) {
    throw new ConfigError('credentialSeconds must be an integer from 900 to 43200');
  }
  if (credentialSeconds <= marginSeconds) {
    throw new ConfigError(
      `credentialSeconds (${credentialSeconds}) must exceed both refreshBeforeSeconds and presignSeconds (${marginSeconds})`,
    );
  }
  // Fails here, at cold start, rather than on the first request.
  tenantSessionPolicy(options.bucket, 'probe', options.partition);

  const now = options.now ?? Date.now;
  const sts =
    options.sts ?? captureClient(new STSClient({ region: options.region, endpoint: options.endpoint, requestHandler: REQUEST_HANDLER }));
  const sessions = new Map<string, CachedSession>();
  const pending = new Map<string, Promise<CachedSession>>();

  function newSession(credentials: TenantCredentials, requestedAtMs: number): CachedSession {
    const client = captureClient(new S3Client({
      region: options.region,
      endpoint: options.endpoint,
      // Emulators serve buckets by path; AWS prefers virtual-hosted style.
      forcePathStyle: options.endpoint !== undefined,
      credentials: {
        accessKeyId: credentials.accessKeyId,
        secretAccessKey: credentials.secretAccessKey,
        sessionToken: credentials.sessionToken,
      },
      // Otherwise the SDK puts a CRC32 of the (empty) presign body into upload URLs, and S3 rejects the real bytes.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: REQUEST_HANDLER,
    }));
    // A session lasts exactly `credentialSeconds` from when STS issued it, which is after we asked: timing
    // it on our own clock is conservative and immune to skew between our clock and STS's `Expiration`.
    const expiresAtMs = requestedAtMs + credentialSeconds * 1000;
    return { client, expiresAtMs, refreshAtMs: expiresAtMs - marginSeconds * 1000 };
  }

  function session(tenantId: string, userId: string): Promise<CachedSession> {
    const cached = sessions.get(tenantId);
    if (cached && now() < cached.refreshAtMs) return Promise.resolve(cached);
    let inFlight = pending.get(tenantId);
    if (!inFlight) {
      const requestedAtMs = now();
      inFlight = assumeTenantRole(sts, {
        roleArn: options.roleArn,
        bucket: options.bucket,
        tenantId,
        userId,
        durationSeconds: credentialSeconds,
        partition: options.partition,
      })
        .then((credentials) => {
          const fresh = newSession(credentials, requestedAtMs);
          const t = now();
          // Forget sessions that expired (tenants that went quiet), so the map stays as large as the active set.
          for (const [id, s] of sessions) if (s.expiresAtMs <= t) sessions.delete(id);
          sessions.set(tenantId, fresh);
          return fresh;
        })
        .finally(() => pending.delete(tenantId));
      pending.set(tenantId, inFlight);
    }
    return inFlight;
  }

  async function guarded<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw toStorageError(error);
    }
  }

  function forTenant(tenantId: string, userId: string): TenantStorage {
    assertTenantId(tenantId);
    if (!isUuid(userId)) throw new UnauthorizedError('The caller is not valid.');
    const bucket = options.bucket;
    const prefix = `${tenantPrefix(tenantId)}documents/`;

    function expiry(s: CachedSession): { expiresIn: number; signingDate: Date; expiresAt: string } {
      const t = now();
      const expiresIn = Math.min(presignSeconds, Math.floor((s.expiresAtMs - t) / 1000));
      return { expiresIn, signingDate: new Date(t), expiresAt: new Date(t + expiresIn * 1000).toISOString() };
    }

    return {
      tenantId,

      async presignUpload(documentId, object) {
        const key = documentKey(tenantId, documentId);
        const contentType = assertContentType(object?.contentType);
        const sizeBytes = assertSize(object?.sizeBytes);
        return guarded(async () => {
          const s = await session(tenantId, userId);
          const { expiresIn, signingDate, expiresAt } = expiry(s);
          const command = new PutObjectCommand({ Bucket: bucket, Key: key, ContentType: contentType, ContentLength: sizeBytes });
          const url = await getSignedUrl(s.client, command, {
            expiresIn,
            signingDate,
            // The presigner leaves content-type unsigned by default; signing both binds the upload to what was declared.
            signableHeaders: new Set(['content-type', 'content-length']),
          });
          return {
            url,
            method: 'PUT' as const,
            headers: { 'Content-Type': contentType, 'Content-Length': String(sizeBytes) },
            expiresAt,
          };
        });
      },

      async presignDownload(documentId, download) {
        const key = documentKey(tenantId, documentId);
        const disposition = contentDisposition(download?.fileName);
        const contentType = download?.contentType === undefined ? undefined : assertContentType(download.contentType);
        return guarded(async () => {
          const s = await session(tenantId, userId);
          const { expiresIn, signingDate, expiresAt } = expiry(s);
          const command = new GetObjectCommand({
            Bucket: bucket,
            Key: key,
            ResponseContentDisposition: disposition,
            ResponseContentType: contentType,
          });
          return { url: await getSignedUrl(s.client, command, { expiresIn, signingDate }), expiresAt };
        });
      },

      async head(documentId) {
        const key = documentKey(tenantId, documentId);
        return guarded(async () => {
          const s = await session(tenantId, userId);
          try {
            const output = await s.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
            return { sizeBytes: output.ContentLength ?? 0, contentType: output.ContentType };
          } catch (error) {
            // S3 answers 403, not 404, for a missing key when the caller may not list that exact key
            // (our listing permission requires an s3:prefix). The key is in this tenant's own prefix,
            // so both mean "no such object"; the deployed smoke test proves own keys are readable.
            const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
            if (status === 404 || status === 403) return null;
            throw error;
          }
        });
      },

      async delete(documentId) {
        const key = documentKey(tenantId, documentId);
        await guarded(async () => {
          const s = await session(tenantId, userId);
          await s.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
        });
      },

      async list(page = {}) {
        const limit = page.limit ?? 1000;
        if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new BadRequestError('The limit must be from 1 to 1000.');
        if (page.cursor !== undefined && (typeof page.cursor !== 'string' || page.cursor === '' || page.cursor.length > 1024)) {
          throw new BadRequestError('The cursor is not valid.');
        }
        return guarded(async () => {
          const s = await session(tenantId, userId);
          const output = await s.client.send(
            new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, MaxKeys: limit, ContinuationToken: page.cursor }),
          );
          const items: StoredObject[] = [];
          for (const object of output.Contents ?? []) {
            const documentId = object.Key?.slice(prefix.length);
            // Only what this module writes counts as a document.
            if (object.Key?.startsWith(prefix) && isUuid(documentId)) {
              items.push({ documentId, sizeBytes: object.Size ?? 0, lastModified: object.LastModified?.toISOString() });
            }
          }
          return { items, nextCursor: output.IsTruncated && output.NextContinuationToken ? output.NextContinuationToken : null };
        });
      },
    };
  }

  return { forTenant };
}

let containerStorage: TenantStorageProvider | undefined;

/** The container's tenant storage, created on first use from `config()` (TENANT_BUCKET, TENANT_ACCESS_ROLE_ARN…). */
export function storage(): TenantStorageProvider {
  if (!containerStorage) {
    const { aws, storage: settings } = config();
    containerStorage = createTenantStorage({
      bucket: required(settings.bucket, 'TENANT_BUCKET'),
      roleArn: required(settings.tenantAccessRoleArn, 'TENANT_ACCESS_ROLE_ARN'),
      region: aws.region,
      endpoint: aws.endpoint,
      credentialSeconds: settings.credentialSeconds,
      refreshBeforeSeconds: settings.refreshBeforeSeconds,
      presignSeconds: settings.presignSeconds,
    });
  }
  return containerStorage;
}
