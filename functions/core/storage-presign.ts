/**
 * Presigned URLs of a tenant's documents, signed by the tenant's scoped session. A URL never outlives the
 * session that signed it (a URL dies with its credentials, whatever its `X-Amz-Expires` says), and never
 * lives longer than {@link MAX_PRESIGN_SECONDS}. Signed by the small S3 client (aws-s3.ts), whose URLs are
 * byte-identical to `@aws-sdk/s3-request-presigner`'s (test/unit/aws-s3.test.ts).
 */
import type { TenantSession } from './storage-credentials';

/** S3 refuses presigned URLs that live longer than 7 days; we allow at most 15 minutes. */
export const MAX_PRESIGN_SECONDS = 900;

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

interface Expiry {
  readonly expiresIn: number;
  readonly signingDate: Date;
  readonly expiresAt: string;
}

function expiry(session: TenantSession, presignSeconds: number, nowMs: number): Expiry {
  const expiresIn = Math.min(presignSeconds, Math.floor((session.expiresAtMs - nowMs) / 1000));
  return { expiresIn, signingDate: new Date(nowMs), expiresAt: new Date(nowMs + expiresIn * 1000).toISOString() };
}

/**
 * A PUT of exactly `sizeBytes` bytes of `contentType` to `key` that can only create the object, never
 * replace it: `If-None-Match: *` is a signed header (S3 conditional write), so S3 refuses a second PUT
 * through the same URL (412) once the key holds an object, and refuses the URL without the header
 * (signature mismatch). A deleted document's key holds a tombstone for the same reason (`storage.ts`).
 */
export async function presignPut(
  session: TenantSession,
  object: { bucket: string; key: string; contentType: string; sizeBytes: number },
  timing: { presignSeconds: number; nowMs: number },
): Promise<PresignedUpload> {
  const { expiresIn, signingDate, expiresAt } = expiry(session, timing.presignSeconds, timing.nowMs);
  const input = {
    Bucket: object.bucket,
    Key: object.key,
    ContentType: object.contentType,
    ContentLength: object.sizeBytes,
    IfNoneMatch: '*',
  };
  const url = await session.client.presign('PutObject', input, {
    expiresIn,
    signingDate,
    // The presigner leaves content-type unsigned by default; signing both binds the upload to what was declared.
    signableHeaders: new Set(['content-type', 'content-length', 'if-none-match']),
  });
  return {
    url,
    method: 'PUT',
    headers: { 'Content-Type': object.contentType, 'Content-Length': String(object.sizeBytes), 'If-None-Match': '*' },
    expiresAt,
  };
}

/** A GET of `key` that S3 answers with the given `Content-Disposition` (and `Content-Type`, when set). */
export async function presignGet(
  session: TenantSession,
  object: { bucket: string; key: string; disposition: string; contentType?: string },
  timing: { presignSeconds: number; nowMs: number },
): Promise<PresignedDownload> {
  const { expiresIn, signingDate, expiresAt } = expiry(session, timing.presignSeconds, timing.nowMs);
  const input = {
    Bucket: object.bucket,
    Key: object.key,
    ResponseContentDisposition: object.disposition,
    ResponseContentType: object.contentType,
  };
  return { url: await session.client.presign('GetObject', input, { expiresIn, signingDate }), expiresAt };
}
