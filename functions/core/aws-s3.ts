/**
 * S3 (REST-XML) on the shared small client (aws-client.ts: SigV4, credentials, the SDK's retries,
 * timeouts, X-Ray): the operations the route bundles call on a tenant's objects, and presigned URLs, in
 * place of `@aws-sdk/client-s3` and `@aws-sdk/s3-request-presigner` (with @smithy/*, an XML parser and
 * the checksum stack: ~300 KiB of minified code per bundle and most of its import time).
 *
 * It does what the SDK's client does for these calls, configured as this project configures it
 * (`requestChecksumCalculation` and `responseChecksumValidation: 'WHEN_REQUIRED'`); a unit test proves it
 * against the SDK itself (test/unit/aws-s3.test.ts):
 *  - GetObject (a `Range`; the answer's bytes are read whole: `Body.transformToByteArray()`),
 *    PutObject (Body, ContentType, ContentLength, Metadata, IfNoneMatch; with `ChecksumAlgorithm` the
 *    body's checksum header, as S3 requires under object lock), ListObjectVersions and DeleteObjects
 *    (S3 requires an integrity header: the SDK's CRC32): the same method, path, query, headers, body
 *    and SigV4 signature; the same outputs parsed from the same answers;
 *  - addressing: virtual-hosted (`{bucket}.s3.{region}.amazonaws.com`) in AWS, path style with
 *    `forcePathStyle`, for an IP endpoint, or for a bucket that is no DNS label, as the SDK's endpoint rules;
 *  - errors: `name` is the XML error's `Code` (`NoSuchKey`, `AccessDenied`, `SlowDown`…; `NotFound` for a
 *    bare 404), `message`, `$fault`, `$metadata` (with `extendedRequestId`, S3's `x-amz-id-2`);
 *  - presigned GET and PUT URLs byte-identical to `getSignedUrl`'s for the same clock and credentials.
 * Not done (no caller needs it): multipart uploads, streamed bodies, response checksum validation,
 * S3 Express, access points and ARNs as buckets, dual-stack / FIPS / accelerate endpoints.
 */
import { createHash } from 'node:crypto';
import {
  AwsClient,
  escapeUri,
  presignedQuery,
  queryString,
  type AwsClientOptions,
  type HttpRequest,
  type Output,
} from './aws-client';
import { child, children, escapeXml, list, present, textOf, xmlBoolean, xmlDate, xmlNumber, xmlReader, type XmlElement } from './aws-xml';

const xmlText = textOf;

export interface S3ClientOptions extends Omit<AwsClientOptions, 'protocol' | 'clientName' | 'signingName' | 'endpointPrefix'> {
  /** Buckets in the path (`{endpoint}/{bucket}/{key}`) rather than the host name: what emulators serve. */
  readonly forcePathStyle?: boolean;
}

export interface GetObjectInput {
  readonly Bucket: string;
  readonly Key: string;
  readonly Range?: string;
  readonly VersionId?: string;
  readonly ResponseContentDisposition?: string;
  readonly ResponseContentType?: string;
}

/** The answer's bytes, read whole; the two methods of the SDK's stream mixin that callers use. */
export interface ObjectBody {
  transformToByteArray(): Promise<Uint8Array>;
  transformToString(encoding?: BufferEncoding): Promise<string>;
}

export interface GetObjectOutput extends ObjectHeaders {
  readonly Body?: ObjectBody;
}

export interface PutObjectInput {
  readonly Bucket: string;
  readonly Key: string;
  readonly Body?: string | Uint8Array;
  readonly ContentType?: string;
  readonly ContentLength?: number;
  readonly Metadata?: Readonly<Record<string, string>>;
  readonly IfNoneMatch?: string;
  /** The body's checksum, sent in a header (S3 requires one for a write under object lock). */
  readonly ChecksumAlgorithm?: 'CRC32' | 'SHA256';
}

export type PutObjectOutput = ObjectHeaders;

export interface ListObjectVersionsInput {
  readonly Bucket: string;
  readonly Prefix?: string;
  readonly Delimiter?: string;
  readonly KeyMarker?: string;
  readonly VersionIdMarker?: string;
  readonly MaxKeys?: number;
}

export interface Owner {
  readonly DisplayName?: string;
  readonly ID?: string;
}

export interface ObjectVersion {
  readonly ETag?: string;
  readonly ChecksumAlgorithm?: string[];
  readonly ChecksumType?: string;
  readonly Size?: number;
  readonly StorageClass?: string;
  readonly Key?: string;
  readonly VersionId?: string;
  readonly IsLatest?: boolean;
  readonly LastModified?: Date;
  readonly Owner?: Owner;
}

export interface DeleteMarkerEntry {
  readonly Owner?: Owner;
  readonly Key?: string;
  readonly VersionId?: string;
  readonly IsLatest?: boolean;
  readonly LastModified?: Date;
}

export interface ListObjectVersionsOutput {
  readonly IsTruncated?: boolean;
  readonly KeyMarker?: string;
  readonly VersionIdMarker?: string;
  readonly NextKeyMarker?: string;
  readonly NextVersionIdMarker?: string;
  readonly Versions?: ObjectVersion[];
  readonly DeleteMarkers?: DeleteMarkerEntry[];
  readonly Name?: string;
  readonly Prefix?: string;
  readonly Delimiter?: string;
  readonly MaxKeys?: number;
  readonly CommonPrefixes?: { Prefix?: string }[];
  readonly EncodingType?: string;
  readonly RequestCharged?: string;
}

export interface DeleteObjectsInput {
  readonly Bucket: string;
  readonly Delete: { readonly Objects: readonly { readonly Key: string; readonly VersionId?: string }[]; readonly Quiet?: boolean };
}

export interface DeleteObjectsOutput {
  readonly Deleted?: { Key?: string; VersionId?: string; DeleteMarker?: boolean; DeleteMarkerVersionId?: string }[];
  readonly Errors?: { Key?: string; VersionId?: string; Code?: string; Message?: string }[];
  readonly RequestCharged?: string;
}

/** What GetObject and PutObject answer in headers (the members this project's callers and tests read). */
export interface ObjectHeaders {
  AcceptRanges?: string;
  BucketKeyEnabled?: boolean;
  CacheControl?: string;
  ChecksumCRC32?: string;
  ChecksumSHA256?: string;
  ChecksumType?: string;
  ContentDisposition?: string;
  ContentEncoding?: string;
  ContentLanguage?: string;
  ContentLength?: number;
  ContentRange?: string;
  ContentType?: string;
  DeleteMarker?: boolean;
  ETag?: string;
  Expiration?: string;
  LastModified?: Date;
  Metadata?: Record<string, string>;
  ObjectLockLegalHoldStatus?: string;
  ObjectLockMode?: string;
  ObjectLockRetainUntilDate?: Date;
  PartsCount?: number;
  RequestCharged?: string;
  ServerSideEncryption?: string;
  Size?: number;
  SSEKMSKeyId?: string;
  StorageClass?: string;
  TagCount?: number;
  VersionId?: string;
}

type HeaderType = 'string' | 'number' | 'boolean' | 'date';

/**
 * Output member ← response header, as the S3 model binds them, and which of the two operations' outputs
 * has it (`get`: GetObject, `put`: PutObject).
 */
const OBJECT_HEADERS: readonly (readonly [keyof ObjectHeaders, string, HeaderType, 'get' | 'put' | 'both'])[] = [
  ['DeleteMarker', 'x-amz-delete-marker', 'boolean', 'get'],
  ['AcceptRanges', 'accept-ranges', 'string', 'get'],
  ['Expiration', 'x-amz-expiration', 'string', 'both'],
  ['LastModified', 'last-modified', 'date', 'get'],
  ['ContentLength', 'content-length', 'number', 'get'],
  ['ETag', 'etag', 'string', 'both'],
  ['ChecksumCRC32', 'x-amz-checksum-crc32', 'string', 'both'],
  ['ChecksumSHA256', 'x-amz-checksum-sha256', 'string', 'both'],
  ['ChecksumType', 'x-amz-checksum-type', 'string', 'both'],
  ['VersionId', 'x-amz-version-id', 'string', 'both'],
  ['CacheControl', 'cache-control', 'string', 'get'],
  ['ContentDisposition', 'content-disposition', 'string', 'get'],
  ['ContentEncoding', 'content-encoding', 'string', 'get'],
  ['ContentLanguage', 'content-language', 'string', 'get'],
  ['ContentRange', 'content-range', 'string', 'get'],
  ['ContentType', 'content-type', 'string', 'get'],
  ['ServerSideEncryption', 'x-amz-server-side-encryption', 'string', 'both'],
  ['SSEKMSKeyId', 'x-amz-server-side-encryption-aws-kms-key-id', 'string', 'both'],
  ['BucketKeyEnabled', 'x-amz-server-side-encryption-bucket-key-enabled', 'boolean', 'both'],
  ['Size', 'x-amz-object-size', 'number', 'put'],
  ['StorageClass', 'x-amz-storage-class', 'string', 'get'],
  ['RequestCharged', 'x-amz-request-charged', 'string', 'both'],
  ['PartsCount', 'x-amz-mp-parts-count', 'number', 'get'],
  ['TagCount', 'x-amz-tagging-count', 'number', 'get'],
  ['ObjectLockMode', 'x-amz-object-lock-mode', 'string', 'get'],
  ['ObjectLockRetainUntilDate', 'x-amz-object-lock-retain-until-date', 'date', 'get'],
  ['ObjectLockLegalHoldStatus', 'x-amz-object-lock-legal-hold', 'string', 'get'],
];

function typed(value: string, type: HeaderType): string | number | boolean | Date {
  if (type === 'number') return Number(value);
  if (type === 'boolean') return value === 'true';
  if (type === 'date') return new Date(value);
  return value;
}

/** GetObject's or PutObject's output members from the answer's headers (GetObject's with `Metadata`). */
function headersOf(headers: Record<string, string>, operation: 'get' | 'put'): ObjectHeaders {
  const out: Record<string, unknown> = {};
  for (const [member, header, type, of] of OBJECT_HEADERS) {
    const value = headers[header];
    if (value !== undefined && (of === operation || of === 'both')) out[member] = typed(value, type);
  }
  if (operation === 'get') {
    const meta: Record<string, string> = {};
    for (const [name, value] of Object.entries(headers)) if (name.startsWith('x-amz-meta-')) meta[name.slice(11)] = value;
    out.Metadata = meta;
  }
  return out as ObjectHeaders;
}

function owner(e: XmlElement | undefined): Owner | undefined {
  return e === undefined ? undefined : present({ DisplayName: xmlText(e, 'DisplayName'), ID: xmlText(e, 'ID') });
}

/** The SDK's `isVirtualHostableS3Bucket`. */
function virtualHostable(bucket: string, allowDots: boolean): boolean {
  if (allowDots) return bucket.split('.').every((label) => virtualHostable(label, false));
  return /^(?!-)[a-z0-9-]{3,63}$/.test(bucket) && !bucket.endsWith('-') && !/^(\d+\.){3}\d+$/.test(bucket);
}

function isIpHost(hostname: string): boolean {
  return /^(\d{1,3}\.){3}\d{1,3}$/.test(hostname) || hostname.startsWith('[');
}

const XML_NAMESPACE = 'http://s3.amazonaws.com/doc/2006-03-01/';

let crcTable: Uint32Array | undefined;

/**
 * CRC-32 (ISO-HDLC, the SDK's default request checksum) of `body`, big-endian base64. In JavaScript rather
 * than `node:zlib`'s, which would load zlib at every S3 bundle's import for the one operation that needs it.
 */
function crc32Base64(body: Uint8Array): string {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (const byte of body) crc = crcTable[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  const out = Buffer.alloc(4);
  out.writeUInt32BE((crc ^ 0xffffffff) >>> 0);
  return out.toString('base64');
}

function checksumHeaders(algorithm: 'CRC32' | 'SHA256', body: Uint8Array): Record<string, string> {
  return {
    'x-amz-sdk-checksum-algorithm': algorithm,
    [`x-amz-checksum-${algorithm.toLowerCase()}`]: algorithm === 'CRC32' ? crc32Base64(body) : createHash('sha256').update(body).digest('base64'),
  };
}

/**
 * Deletes `objects` (at most 1,000) in one quiet DeleteObjects, and refuses a partial answer: S3 answers
 * 200 and names the keys it could not delete in `Errors`, so a caller that ignored them would report a
 * deletion that left versions behind. The error is named after S3's code for the first of them, as the
 * SDK names errors, so that aws-errors.ts classifies it (`SlowDown`, `InternalError`: 503).
 */
export async function deleteEvery(client: S3Client, bucket: string, objects: DeleteObjectsInput['Delete']['Objects']): Promise<void> {
  const out = await client.deleteObjects({ Bucket: bucket, Delete: { Objects: objects, Quiet: true } });
  const failed = out.Errors ?? [];
  if (failed.length === 0) return;
  const error = new Error(`S3 refused to delete ${failed.length} object versions (${failed[0]?.Code ?? 'unknown'}: ${failed[0]?.Message ?? ''})`);
  error.name = failed[0]?.Code ?? 'UnknownError';
  throw error;
}

export class S3Client extends AwsClient {
  readonly #forcePathStyle: boolean;

  constructor(options: S3ClientOptions) {
    super({ ...options, protocol: 'aws-s3', clientName: 'S3Client', signingName: 's3' });
    this.#forcePathStyle = options.forcePathStyle ?? false;
  }

  /** Where `bucket`'s `key` is: its host and (encoded) path, as the SDK's endpoint rules address it. */
  address(bucket: string, key?: string): { host: string; path: string } {
    const endpoint = this.endpoint;
    const base = endpoint.pathname === '/' ? '' : endpoint.pathname.replace(/\/$/, '');
    const keyPath = key === undefined ? '' : key.split('/').map(escapeUri).join('/');
    const virtual = this.customEndpoint
      ? !this.#forcePathStyle && !isIpHost(endpoint.hostname) && virtualHostable(bucket, endpoint.protocol === 'http:')
      : !this.#forcePathStyle && virtualHostable(bucket, false);
    // The client's endpoint: the configured one, or the regional one its constructor resolved.
    if (virtual) return { host: `${bucket}.${endpoint.host}`, path: `${base}/${keyPath}` };
    return { host: endpoint.host, path: `${base}/${escapeUri(bucket)}/${keyPath}` };
  }

  #getRequest(input: GetObjectInput): HttpRequest {
    return {
      method: 'GET',
      ...this.address(input.Bucket, input.Key),
      query: present({
        'x-id': 'GetObject',
        versionId: input.VersionId,
        'response-content-disposition': input.ResponseContentDisposition,
        'response-content-type': input.ResponseContentType,
      }) as Record<string, string>,
      headers: present({ range: input.Range }) as Record<string, string>,
      body: '',
    };
  }

  #putRequest(input: PutObjectInput, presign: boolean): HttpRequest {
    const body = typeof input.Body === 'string' ? Buffer.from(input.Body, 'utf8') : (input.Body ?? new Uint8Array(0));
    const headers: Record<string, string> = {};
    if (input.ContentType !== undefined || !presign) headers['content-type'] = input.ContentType ?? 'application/octet-stream';
    if (input.ContentLength !== undefined) headers['content-length'] = String(input.ContentLength);
    if (input.IfNoneMatch !== undefined) headers['if-none-match'] = input.IfNoneMatch;
    for (const [name, value] of Object.entries(input.Metadata ?? {})) headers[`x-amz-meta-${name}`] = value;
    if (input.ChecksumAlgorithm !== undefined && !presign) Object.assign(headers, checksumHeaders(input.ChecksumAlgorithm, body));
    return { method: 'PUT', ...this.address(input.Bucket, input.Key), query: { 'x-id': 'PutObject' }, headers, body };
  }

  getObject(input: GetObjectInput): Promise<Output<GetObjectOutput>> {
    return this.invoke(
      'GetObject',
      input,
      this.#getRequest(input),
      xmlReader((_root, response) => {
        const bytes = response.body;
        const body: ObjectBody = {
          transformToByteArray: async () => new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength),
          transformToString: async (encoding: BufferEncoding = 'utf8') => bytes.toString(encoding),
        };
        return { ...headersOf(response.headers, 'get'), Body: body };
      }, { body: false }),
    );
  }

  putObject(input: PutObjectInput): Promise<Output<PutObjectOutput>> {
    return this.invoke('PutObject', input, this.#putRequest(input, false), xmlReader((_root, response) => headersOf(response.headers, 'put'), { body: false }));
  }

  listObjectVersions(input: ListObjectVersionsInput): Promise<Output<ListObjectVersionsOutput>> {
    const request: HttpRequest = {
      method: 'GET',
      ...this.address(input.Bucket, ''),
      query: present({
        versions: '',
        delimiter: input.Delimiter,
        'key-marker': input.KeyMarker,
        'max-keys': input.MaxKeys === undefined ? undefined : String(input.MaxKeys),
        prefix: input.Prefix,
        'version-id-marker': input.VersionIdMarker,
      }) as Record<string, string>,
      headers: {},
      body: '',
    };
    const read = xmlReader((root, response): ListObjectVersionsOutput => {
      return present({
        IsTruncated: xmlBoolean(root, 'IsTruncated'),
        KeyMarker: xmlText(root, 'KeyMarker'),
        VersionIdMarker: xmlText(root, 'VersionIdMarker'),
        NextKeyMarker: xmlText(root, 'NextKeyMarker'),
        NextVersionIdMarker: xmlText(root, 'NextVersionIdMarker'),
        Versions: list(children(root, 'Version'), (v) =>
          present({
            ETag: xmlText(v, 'ETag'),
            ChecksumAlgorithm: list(children(v, 'ChecksumAlgorithm'), (c) => c.text),
            ChecksumType: xmlText(v, 'ChecksumType'),
            Size: xmlNumber(v, 'Size'),
            StorageClass: xmlText(v, 'StorageClass'),
            Key: xmlText(v, 'Key'),
            VersionId: xmlText(v, 'VersionId'),
            IsLatest: xmlBoolean(v, 'IsLatest'),
            LastModified: xmlDate(v, 'LastModified'),
            Owner: owner(child(v, 'Owner')),
          }),
        ),
        DeleteMarkers: list(children(root, 'DeleteMarker'), (m) =>
          present({
            Owner: owner(child(m, 'Owner')),
            Key: xmlText(m, 'Key'),
            VersionId: xmlText(m, 'VersionId'),
            IsLatest: xmlBoolean(m, 'IsLatest'),
            LastModified: xmlDate(m, 'LastModified'),
          }),
        ),
        Name: xmlText(root, 'Name'),
        Prefix: xmlText(root, 'Prefix'),
        Delimiter: xmlText(root, 'Delimiter'),
        MaxKeys: xmlNumber(root, 'MaxKeys'),
        CommonPrefixes: list(children(root, 'CommonPrefixes'), (p) => present({ Prefix: xmlText(p, 'Prefix') })),
        EncodingType: xmlText(root, 'EncodingType'),
        RequestCharged: response.headers['x-amz-request-charged'],
      });
    });
    return this.invoke('ListObjectVersions', input, request, read);
  }

  deleteObjects(input: DeleteObjectsInput): Promise<Output<DeleteObjectsOutput>> {
    const objects = input.Delete.Objects.map(
      (o) => `<Object><Key>${escapeXml(o.Key)}</Key>${o.VersionId === undefined ? '' : `<VersionId>${escapeXml(o.VersionId)}</VersionId>`}</Object>`,
    ).join('');
    const quiet = input.Delete.Quiet === undefined ? '' : `<Quiet>${String(input.Delete.Quiet)}</Quiet>`;
    const body = Buffer.from(`<?xml version="1.0" encoding="UTF-8"?><Delete xmlns="${XML_NAMESPACE}">${objects}${quiet}</Delete>`, 'utf8');
    const request: HttpRequest = {
      method: 'POST',
      ...this.address(input.Bucket, ''),
      query: { delete: '' },
      // DeleteObjects requires an integrity header: the SDK sends its default algorithm's checksum.
      headers: { 'content-type': 'application/xml', ...checksumHeaders('CRC32', body) },
      body,
    };
    const read = xmlReader((root, response): DeleteObjectsOutput => {
      return present({
        Deleted: list(children(root, 'Deleted'), (d) =>
          present({
            Key: xmlText(d, 'Key'),
            VersionId: xmlText(d, 'VersionId'),
            DeleteMarker: xmlBoolean(d, 'DeleteMarker'),
            DeleteMarkerVersionId: xmlText(d, 'DeleteMarkerVersionId'),
          }),
        ),
        RequestCharged: response.headers['x-amz-request-charged'],
        Errors: list(children(root, 'Error'), (e) =>
          present({ Key: xmlText(e, 'Key'), VersionId: xmlText(e, 'VersionId'), Code: xmlText(e, 'Code'), Message: xmlText(e, 'Message') }),
        ),
      });
    });
    return this.invoke('DeleteObjects', input, request, read);
  }

  /**
   * A presigned URL of a GET or PUT, as `getSignedUrl` of `@aws-sdk/s3-request-presigner` gives it:
   * `content-type` unsigned unless in `signableHeaders`, `x-amz-*` headers in the query.
   */
  async presign(
    operation: 'GetObject' | 'PutObject',
    input: GetObjectInput | PutObjectInput,
    options: { readonly expiresIn: number; readonly signingDate: Date; readonly signableHeaders?: ReadonlySet<string> },
  ): Promise<string> {
    const request = operation === 'GetObject' ? this.#getRequest(input as GetObjectInput) : this.#putRequest(input as PutObjectInput, true);
    const credentials = await this.credentials();
    const query = presignedQuery(
      // The presigner's payload hash, in the query (not a header) as S3 takes it.
      { method: request.method, path: request.path, query: { ...request.query, 'X-Amz-Content-Sha256': 'UNSIGNED-PAYLOAD' }, headers: { ...request.headers, host: request.host! } },
      credentials,
      this.region,
      this.signingName,
      { ...options, unsignableHeaders: new Set(['content-type']) },
    );
    return `${this.endpoint.protocol}//${request.host}${request.path}?${queryString(query)}`;
  }
}
