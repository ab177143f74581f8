/**
 * The names and headers of stored objects: keys built only from a slug tenant id and a server-generated
 * UUID, the `Content-Disposition` of a download (RFC 6266 with an RFC 8187 `filename*`), and the checks on
 * what a client declares for an upload. Pure, with no SDK import.
 */
import { BadRequestError, PayloadTooLargeError } from './errors';
import { isMediaType } from './media-type';
import { tenantPrefix } from './storage-policy';
import { isUuid } from './tenant';

/** The largest object a single presigned PUT can upload (S3's limit for one PUT: 5 GiB). */
export const MAX_UPLOAD_BYTES = 5 * 1024 ** 3;

/** The S3 key of a document: only a slug tenant id and a UUID, never anything a user typed. */
export function documentKey(tenantId: string, documentId: string): string {
  if (!isUuid(documentId)) throw new BadRequestError('The document id is not valid.');
  return `${tenantPrefix(tenantId)}documents/${documentId}`;
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

/** The declared media type of an upload or download, refused unless it is one (the one media-type rule). */
export function assertContentType(contentType: unknown): string {
  if (!isMediaType(contentType)) {
    throw new BadRequestError('The content type is not valid.');
  }
  return contentType;
}

/** The declared size of an upload: a whole number of bytes from 1 to {@link MAX_UPLOAD_BYTES}. */
export function assertSize(sizeBytes: unknown): number {
  if (typeof sizeBytes !== 'number' || !Number.isSafeInteger(sizeBytes) || sizeBytes < 1) {
    throw new BadRequestError('The size must be a whole number of bytes, at least 1.');
  }
  if (sizeBytes > MAX_UPLOAD_BYTES) throw new PayloadTooLargeError('The document is too large for one upload.');
  return sizeBytes;
}
