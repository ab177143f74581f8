/**
 * The small S3 (REST-XML) and STS (Query) clients (functions/core/aws-s3.ts, aws-sts.ts) against the SDK's
 * own clients and presigner, which stay dev dependencies as the reference. Both call one local HTTP server
 * that records every request and answers what the test says, so what goes on the wire and what comes
 * back can be compared (the approach of test/unit/aws-json.test.ts):
 *  - SigV4: the SDK's request, re-signed by `signatureOf`, has the SDK's signature byte for byte (with and
 *    without a session token), for every operation the functions call; on a frozen clock, the SDK's request
 *    without its bookkeeping headers signs to our authorization header byte for byte;
 *  - the request: same method, path, query, body bytes and protocol headers (range, content type and
 *    length, metadata, conditional and checksum headers, payload hash, session token);
 *  - answers: the same outputs from the same XML and headers, the same errors (name, message, $fault,
 *    $metadata), the same retries;
 *  - presigned URLs: identical to `getSignedUrl`'s for the same clock and credentials, in AWS and against
 *    an emulator, virtual-hosted and path style;
 *  - timeouts, credentials (the environment for STS, only the given ones for a tenant's S3 client), and
 *    X-Ray's own v3 instrumentation, which records the same subsegment for both.
 */
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
  S3Client as SdkS3Client,
} from '@aws-sdk/client-s3';
import { AssumeRoleCommand, STSClient as SdkStsClient } from '@aws-sdk/client-sts';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { signatureOf } from '../../functions/core/aws-client';
import { S3Client, type S3ClientOptions } from '../../functions/core/aws-s3';
import { StsClient } from '../../functions/core/aws-sts';
import { parseXml } from '../../functions/core/aws-xml';
import { comparableSubsegment, CREDENTIAL_CASES, recordingEndpoint, startedForSuite, TRACE_HEADER, withEnvironment, withoutToken, withToken, xraySubsegmentOf, type Answer, type Recorded } from '../support/aws-endpoint';

/** S3's endpoint: answers carry a request id and S3's extended one. */
function server() {
  return recordingEndpoint((n) => ({ 'x-amz-request-id': `req-${n}`, 'x-amz-id-2': 'host-id' }), { status: 200, body: '' });
}

const region = 'eu-west-1';
const bucket = 'tenant-documents-unit';
const key = 'tenants/acme/documents/0b6f2c1e-8a3d-4c5e-9f10-1a2b3c4d5e6f';

/** The SDK's S3 client as storage-credentials.ts configured it for a tenant session. */
function sdkS3(options: { endpoint?: string; credentials: object; forcePathStyle?: boolean; maxAttempts?: number; checksums?: 'WHEN_REQUIRED' | 'WHEN_SUPPORTED' }) {
  return new SdkS3Client({
    region,
    endpoint: options.endpoint,
    forcePathStyle: options.forcePathStyle ?? options.endpoint !== undefined,
    credentials: options.credentials as never,
    requestChecksumCalculation: options.checksums ?? 'WHEN_REQUIRED',
    responseChecksumValidation: options.checksums ?? 'WHEN_REQUIRED',
    maxAttempts: options.maxAttempts ?? 1,
  });
}

function ourS3(options: Partial<S3ClientOptions> & { credentials: S3ClientOptions['credentials'] }) {
  return new S3Client({ region, maxAttempts: 1, forcePathStyle: options.endpoint !== undefined, ...options });
}

/** Every S3 call the functions make, as the SDK command and as the small client's call. */
const s3Calls: { name: string; checksums?: 'WHEN_SUPPORTED'; command: () => object; ours: (c: S3Client) => Promise<object>; answer: Answer }[] = [
  {
    name: 'GetObject with a Range (storage.ts head)',
    command: () => new GetObjectCommand({ Bucket: bucket, Key: key, Range: 'bytes=0-0' }),
    ours: (c: S3Client) => c.getObject({ Bucket: bucket, Key: key, Range: 'bytes=0-0' }),
    answer: { status: 206, body: 'x', headers: { 'content-range': 'bytes 0-0/10', 'content-type': 'application/pdf' } },
  },
  {
    name: 'GetObject of a key that needs encoding',
    command: () => new GetObjectCommand({ Bucket: bucket, Key: "tenants/acme/exports/a b+c!'()*~=&?é/bundle.jsonl" }),
    ours: (c: S3Client) => c.getObject({ Bucket: bucket, Key: "tenants/acme/exports/a b+c!'()*~=&?é/bundle.jsonl" }),
    answer: { status: 200, body: '{"a":1}\n' },
  },
  {
    name: 'PutObject of a tombstone (storage.ts delete)',
    command: () => new PutObjectCommand({ Bucket: bucket, Key: key, Body: new Uint8Array(0), ContentLength: 0, Metadata: { tombstone: 'deleted' } }),
    ours: (c: S3Client) => c.putObject({ Bucket: bucket, Key: key, Body: new Uint8Array(0), ContentLength: 0, Metadata: { tombstone: 'deleted' } }),
    answer: { status: 200, body: '', headers: { etag: '"d41d8cd98f00b204e9800998ecf8427e"', 'x-amz-version-id': 'v-tomb' } },
  },
  {
    name: 'PutObject of an export (tenant-objects.ts putExport)',
    command: () => new PutObjectCommand({ Bucket: bucket, Key: 'tenants/acme/exports/x/bundle.jsonl', Body: Buffer.from('{"row":1}\n'), ContentType: 'application/x-ndjson' }),
    ours: (c: S3Client) => c.putObject({ Bucket: bucket, Key: 'tenants/acme/exports/x/bundle.jsonl', Body: Buffer.from('{"row":1}\n'), ContentType: 'application/x-ndjson' }),
    answer: { status: 200, body: '', headers: { etag: '"abc"' } },
  },
  {
    name: 'PutObject with a SHA-256 checksum (audit/anchor.ts, the SDK client with its default checksum settings)',
    checksums: 'WHEN_SUPPORTED',
    command: () => new PutObjectCommand({ Bucket: bucket, Key: 'audit-heads/2026/01/01/x.json', Body: '{"format":"audit-chain-heads-v1"}', ContentType: 'application/json', ChecksumAlgorithm: 'SHA256' }),
    ours: (c: S3Client) => c.putObject({ Bucket: bucket, Key: 'audit-heads/2026/01/01/x.json', Body: '{"format":"audit-chain-heads-v1"}', ContentType: 'application/json', ChecksumAlgorithm: 'SHA256' }),
    answer: { status: 200, body: '', headers: { etag: '"abc"' } },
  },
  {
    name: 'ListObjectVersions with every paging field',
    command: () => new ListObjectVersionsCommand({ Bucket: bucket, Prefix: 'tenants/acme/documents/', KeyMarker: key, VersionIdMarker: 'v 1+/=', MaxKeys: 1000 }),
    ours: (c: S3Client) => c.listObjectVersions({ Bucket: bucket, Prefix: 'tenants/acme/documents/', KeyMarker: key, VersionIdMarker: 'v 1+/=', MaxKeys: 1000 }),
    answer: { status: 200, body: '<ListVersionsResult><IsTruncated>false</IsTruncated></ListVersionsResult>' },
  },
  {
    name: 'ListObjectVersions of a prefix',
    command: () => new ListObjectVersionsCommand({ Bucket: bucket, Prefix: key }),
    ours: (c: S3Client) => c.listObjectVersions({ Bucket: bucket, Prefix: key }),
    answer: { status: 200, body: '<ListVersionsResult><IsTruncated>false</IsTruncated></ListVersionsResult>' },
  },
  {
    name: 'DeleteObjects, quiet, with versions (and a key that needs escaping)',
    command: () => new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: [{ Key: key, VersionId: 'v1' }, { Key: 'tenants/acme/a&b<c>"\'', VersionId: 'v2' }, { Key: 'k' }], Quiet: true } }),
    ours: (c: S3Client) => c.deleteObjects({ Bucket: bucket, Delete: { Objects: [{ Key: key, VersionId: 'v1' }, { Key: 'tenants/acme/a&b<c>"\'', VersionId: 'v2' }, { Key: 'k' }], Quiet: true } }),
    answer: { status: 200, body: '<DeleteResult></DeleteResult>' },
  },
];

/** The protocol headers the small client must send exactly as the SDK does. */
const PROTOCOL_HEADERS = [
  'content-type', 'content-length', 'host', 'range', 'if-none-match', 'x-amz-meta-tombstone', 'x-amz-content-sha256', 'x-amz-security-token',
  'x-amz-sdk-checksum-algorithm', 'x-amz-checksum-crc32', 'x-amz-checksum-sha256', 'x-amz-target',
];

/** The SDK's bookkeeping headers (invocation id, attempt, its user agent), signed by it, never sent by the small client. */
const SDK_BOOKKEEPING = ['amz-sdk-invocation-id', 'amz-sdk-request', 'x-amz-user-agent'];

/** The request's path and decoded query, as SigV4 takes them. */
function splitPath(path: string): { path: string; query: Record<string, string> } {
  const at = path.indexOf('?');
  if (at === -1) return { path, query: {} };
  const query: Record<string, string> = {};
  for (const part of path.slice(at + 1).split('&')) {
    const [k, v = ''] = part.split('=');
    query[decodeURIComponent(k!)] = decodeURIComponent(v);
  }
  return { path: path.slice(0, at), query };
}

function expectSameRequest(theirs: Recorded, mine: Recorded, credentials: typeof withToken | typeof withoutToken, service: string) {
  // The SDK's request re-signed here has the SDK's signature, byte for byte.
  const { authorization, ...signed } = theirs.headers;
  expect(authorization).toMatch(new RegExp(`^AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/`));
  expect(signatureOf({ method: theirs.method, ...splitPath(theirs.path), headers: signed, body: theirs.body }, credentials, region, service)).toBe(authorization);

  // The same request on the wire, apart from the SDK's own bookkeeping headers.
  expect(mine.method).toBe(theirs.method);
  expect(mine.path).toBe(theirs.path);
  expect(mine.body.toString('hex')).toBe(theirs.body.toString('hex'));
  for (const name of PROTOCOL_HEADERS) expect([name, mine.headers[name]]).toEqual([name, theirs.headers[name]]);
  // Every header the SDK signs, ours signs too, but for the bookkeeping ones.
  const signedBy = (h: Record<string, string>) => /SignedHeaders=([^,]+)/.exec(h.authorization!)![1]!.split(';');
  expect(signedBy(mine.headers)).toEqual(signedBy(theirs.headers).filter((n) => !SDK_BOOKKEEPING.includes(n)));
  // Ours verifies the same way: its signature over what it sent, with its signed headers.
  const { authorization: ourAuthorization, ...ourSigned } = mine.headers;
  expect(signatureOf({ method: mine.method, ...splitPath(mine.path), headers: ourSigned, body: mine.body }, credentials, region, service)).toBe(ourAuthorization);
  // On the frozen clock both signed at the same instant: the SDK's request without its bookkeeping
  // headers, signed by SigV4 (proved the SDK's above), is our authorization header byte for byte.
  expect(mine.headers['x-amz-date']).toBe(FROZEN_AMZ_DATE);
  expect(theirs.headers['x-amz-date']).toBe(FROZEN_AMZ_DATE);
  const sdkOwn = new Set([...SDK_BOOKKEEPING, 'user-agent', 'connection']);
  const withoutBookkeeping = Object.fromEntries(Object.entries(signed).filter(([name]) => !sdkOwn.has(name)));
  expect(signatureOf({ method: theirs.method, ...splitPath(theirs.path), headers: withoutBookkeeping, body: theirs.body }, credentials, region, service)).toBe(ourAuthorization);
}

/** Both clients' clocks, frozen (timers stay real): the same `x-amz-date`, so the same signature. */
const FROZEN_AT = new Date('2026-12-01T16:00:00.000Z');
const FROZEN_AMZ_DATE = '20261201T160000Z';
async function onFrozenClock<T>(work: () => Promise<T>): Promise<T> {
  jest.useFakeTimers({
    now: FROZEN_AT,
    doNotFake: ['hrtime', 'nextTick', 'performance', 'queueMicrotask', 'setImmediate', 'clearImmediate', 'setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'],
  });
  try {
    return await work();
  } finally {
    jest.useRealTimers();
  }
}

const comparable = (output: Record<string, unknown>) => {
  const { $metadata, Body, ...rest } = output;
  void Body;
  return { ...rest, $metadata: { ...($metadata as object), requestId: 'same', totalRetryDelay: 0 } };
};

describe('the small S3 and STS clients', () => {
  const endpoint = startedForSuite(server());

  describe.each(CREDENTIAL_CASES)('sign and send what the SDK does, %s', (_label, credentials) => {
    it.each(s3Calls.map((c) => [c.name, c] as const))('S3 %s', async (_name, call) => {
      endpoint.answer(call.answer);
      const sdk = sdkS3({ endpoint: endpoint.url, credentials, checksums: call.checksums });
      const ours = ourS3({ endpoint: endpoint.url, credentials });
      try {
        const theirs = (await onFrozenClock(() => sdk.send(call.command() as never))) as unknown as Record<string, unknown>;
        const mine = (await onFrozenClock(() => call.ours(ours))) as unknown as Record<string, unknown>;
        // The same output from the same answer.
        expect(comparable(mine)).toEqual(comparable(theirs));
        if (theirs.Body) {
          expect(Buffer.from(await (mine.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray())).toEqual(
            Buffer.from(await (theirs.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()),
          );
        }
      } finally {
        sdk.destroy();
        ours.destroy();
      }
      expect(endpoint.requests).toHaveLength(2);
      const [theirs, mine] = endpoint.requests as [Recorded, Recorded];
      expectSameRequest(theirs, mine, credentials, 's3');
    });

    it('STS AssumeRole with a session policy', async () => {
      const input = {
        RoleArn: 'arn:aws:iam::123456789012:role/tenant-access',
        RoleSessionName: 'acme',
        DurationSeconds: 900,
        Policy: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::b/tenants/acme/*' }] }),
        Tags: [{ Key: 'tenant', Value: 'acme corp' }],
        ExternalId: 'ext=1&2',
      };
      endpoint.answer({ status: 200, body: assumeRoleAnswer, headers: { 'x-amzn-requestid': 'sts-1' } });
      const sdk = new SdkStsClient({ region, endpoint: endpoint.url, credentials, maxAttempts: 1 });
      const ours = new StsClient({ region, endpoint: endpoint.url, credentials, maxAttempts: 1 });
      try {
        const theirs = await onFrozenClock(() => sdk.send(new AssumeRoleCommand(input)));
        const mine = await onFrozenClock(() => ours.assumeRole(input));
        expect(comparable(mine as never)).toEqual(comparable(theirs as never));
      } finally {
        sdk.destroy();
        ours.destroy();
      }
      const [theirs, mine] = endpoint.requests as [Recorded, Recorded];
      expectSameRequest(theirs, mine, credentials, 'sts');
      expect(mine.body.toString()).toMatch(/^Action=AssumeRole&Version=2011-06-15&RoleArn=/);
    });
  });

  const assumeRoleAnswer = `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <SourceIdentity>who</SourceIdentity>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/tenant-access/acme</Arn>
      <AssumedRoleId>ARO123EXAMPLE123:acme</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId>
      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>
      <SessionToken>IQoJb3JpZ2luX2VjEOz////////////////////wEXAMPLEtMSJHMEUCIDoKK3JH9uG&amp;QE1z</SessionToken>
      <Expiration>2026-12-01T18:45:22.123Z</Expiration>
    </Credentials>
    <PackedPolicySize>6</PackedPolicySize>
  </AssumeRoleResult>
  <ResponseMetadata>
    <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>
  </ResponseMetadata>
</AssumeRoleResponse>`;

  it.each([
    [
      'ListObjectVersions: versions, delete markers and paging',
      () => new ListObjectVersionsCommand({ Bucket: bucket, Prefix: 'tenants/acme/' }),
      (c: S3Client) => c.listObjectVersions({ Bucket: bucket, Prefix: 'tenants/acme/' }),
      {
        status: 200,
        headers: { 'content-type': 'application/xml' },
        body: `<?xml version="1.0" encoding="UTF-8"?>
<ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>${bucket}</Name><Prefix>tenants/acme/</Prefix><KeyMarker></KeyMarker><VersionIdMarker/>
  <NextKeyMarker>tenants/acme/documents/b&amp;c</NextKeyMarker><NextVersionIdMarker>v3</NextVersionIdMarker>
  <MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>
  <Version><Key>${key}</Key><VersionId>v1</VersionId><IsLatest>true</IsLatest><LastModified>2026-11-30T10:00:00.000Z</LastModified>
    <ETag>&quot;e1&quot;</ETag><Size>1024</Size><Owner><DisplayName>webfile</DisplayName><ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a</ID></Owner>
    <StorageClass>STANDARD</StorageClass><ChecksumAlgorithm>CRC32</ChecksumAlgorithm></Version>
  <Version><Key>${key}</Key><VersionId>v0</VersionId><IsLatest>false</IsLatest><LastModified>2026-11-29T10:00:00Z</LastModified>
    <ETag>"e0"</ETag><Size>0</Size><StorageClass>STANDARD</StorageClass></Version>
  <DeleteMarker><Key>tenants/acme/documents/b&amp;c</Key><VersionId>v3</VersionId><IsLatest>true</IsLatest>
    <LastModified>2026-11-30T11:00:00.000Z</LastModified><Owner><ID>x</ID></Owner></DeleteMarker>
  <CommonPrefixes><Prefix>tenants/acme/exports/</Prefix></CommonPrefixes>
</ListVersionsResult>`,
      },
    ],
    [
      'ListObjectVersions: an empty page',
      () => new ListObjectVersionsCommand({ Bucket: bucket, Prefix: 'tenants/none/' }),
      (c: S3Client) => c.listObjectVersions({ Bucket: bucket, Prefix: 'tenants/none/' }),
      { status: 200, body: `<ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>${bucket}</Name><Prefix>tenants/none/</Prefix><KeyMarker></KeyMarker><VersionIdMarker></VersionIdMarker><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListVersionsResult>` },
    ],
    [
      'DeleteObjects: deleted versions and errors',
      () => new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: [{ Key: key, VersionId: 'v1' }] } }),
      (c: S3Client) => c.deleteObjects({ Bucket: bucket, Delete: { Objects: [{ Key: key, VersionId: 'v1' }] } }),
      {
        status: 200,
        body: `<?xml version="1.0" encoding="UTF-8"?>
<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Deleted><Key>${key}</Key><VersionId>v1</VersionId></Deleted>
  <Deleted><Key>k2</Key><DeleteMarker>true</DeleteMarker><DeleteMarkerVersionId>dm1</DeleteMarkerVersionId></Deleted>
  <Error><Key>k3</Key><VersionId>v9</VersionId><Code>AccessDenied</Code><Message>Access Denied</Message></Error>
</DeleteResult>`,
      },
    ],
    [
      'GetObject: the object\'s headers and metadata',
      () => new GetObjectCommand({ Bucket: bucket, Key: key }),
      (c: S3Client) => c.getObject({ Bucket: bucket, Key: key }),
      {
        status: 200,
        body: 'tenant bytes',
        headers: {
          'content-type': 'text/plain',
          'last-modified': 'Mon, 30 Nov 2026 10:00:00 GMT',
          etag: '"5d41402abc4b2a76b9719d911017c592"',
          'accept-ranges': 'bytes',
          'x-amz-version-id': 'v1',
          'x-amz-meta-tombstone': 'deleted',
          'x-amz-server-side-encryption': 'aws:kms',
          'x-amz-server-side-encryption-aws-kms-key-id': 'arn:aws:kms:eu-west-1:123456789012:key/k',
          'x-amz-server-side-encryption-bucket-key-enabled': 'true',
          'x-amz-storage-class': 'STANDARD',
          'x-amz-tagging-count': '2',
          'cache-control': 'no-store',
          'content-disposition': 'attachment; filename="a.txt"',
          'x-amz-object-lock-mode': 'COMPLIANCE',
          'x-amz-object-lock-retain-until-date': '2026-12-02T10:00:00.000Z',
        },
      },
    ],
    [
      'PutObject: version, checksum and encryption',
      () => new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'x', ContentType: 'text/plain' }),
      (c: S3Client) => c.putObject({ Bucket: bucket, Key: key, Body: 'x', ContentType: 'text/plain' }),
      {
        status: 200,
        body: '',
        headers: {
          etag: '"9dd4e461268c8034f5c8564e155c67a6"',
          'x-amz-version-id': '3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo',
          'x-amz-server-side-encryption': 'AES256',
          'x-amz-checksum-crc32': 'jHNlIQ==',
          'x-amz-checksum-type': 'FULL_OBJECT',
          'x-amz-object-size': '1',
        },
      },
    ],
  ] as const)('reads what the SDK reads from %s', async (_label, command, call, answer) => {
    endpoint.answer(answer);
    const sdk = sdkS3({ endpoint: endpoint.url, credentials: withToken });
    const ours = ourS3({ endpoint: endpoint.url, credentials: withToken });
    try {
      const theirs = (await sdk.send(command() as never)) as unknown as Record<string, unknown>;
      const mine = (await call(ours)) as unknown as Record<string, unknown>;
      expect(comparable(mine)).toEqual(comparable(theirs));
    } finally {
      sdk.destroy();
      ours.destroy();
    }
  });

  const errorShape = (e: Record<string, unknown>) => ({
    name: e.name,
    message: e.message,
    $fault: e.$fault,
    $metadata: { ...(e.$metadata as object), requestId: 'same', totalRetryDelay: 0 },
  });

  it.each([
    ['NoSuchKey', { status: 404, body: `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>${key}</Key><RequestId>r</RequestId><HostId>h</HostId></Error>` }],
    ['NoSuchBucket', { status: 404, body: `<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message><BucketName>${bucket}</BucketName></Error>` }],
    ['AccessDenied', { status: 403, body: '<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>' }],
    ['InvalidRange (an empty object)', { status: 416, body: '<Error><Code>InvalidRange</Code><Message>The requested range is not satisfiable</Message><RangeRequested>bytes=0-0</RangeRequested><ActualObjectSize>0</ActualObjectSize></Error>' }],
    ['a bare 404', { status: 404, body: '' }],
    ['a bare 403', { status: 403, body: '' }],
    ['a proxy\'s page', { status: 502, body: '<html><body>Bad Gateway</body></html>' }],
  ])('fails as the SDK does on %s', async (_label, answer) => {
    endpoint.answer(answer);
    const sdk = sdkS3({ endpoint: endpoint.url, credentials: withToken, maxAttempts: 1 });
    const ours = ourS3({ endpoint: endpoint.url, credentials: withToken, maxAttempts: 1 });
    const theirs = (await sdk.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: 'bytes=0-0' })).catch((e: unknown) => e)) as Record<string, unknown>;
    const mine = (await ours.getObject({ Bucket: bucket, Key: key, Range: 'bytes=0-0' }).catch((e: unknown) => e)) as Record<string, unknown>;
    sdk.destroy();
    ours.destroy();
    expect(mine).toBeInstanceOf(Error);
    expect(errorShape(mine)).toEqual(errorShape(theirs));
  });

  it.each([
    [
      'AccessDenied',
      {
        status: 403,
        headers: { 'x-amzn-requestid': 'sts-err' },
        body: '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:sts::1:assumed-role/x is not authorized to perform: sts:AssumeRole</Message></Error><RequestId>sts-err</RequestId></ErrorResponse>',
      },
    ],
    ['a bare 400', { status: 400, body: '' }],
    ['a bare 404', { status: 404, body: '' }],
  ])('fails as the SDK does on an STS error: %s', async (_label, answer) => {
    endpoint.answer(answer);
    const input = { RoleArn: 'arn:aws:iam::123456789012:role/tenant-access', RoleSessionName: 'acme' };
    const sdk = new SdkStsClient({ region, endpoint: endpoint.url, credentials: withToken, maxAttempts: 1 });
    const ours = new StsClient({ region, endpoint: endpoint.url, credentials: withToken, maxAttempts: 1 });
    const theirs = (await sdk.send(new AssumeRoleCommand(input)).catch((e: unknown) => e)) as Record<string, unknown>;
    const mine = (await ours.assumeRole(input).catch((e: unknown) => e)) as Record<string, unknown>;
    sdk.destroy();
    ours.destroy();
    expect(errorShape(mine)).toEqual(errorShape(theirs));
  });

  it.each([
    ['SlowDown (503)', { status: 503, body: '<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>' }],
    ['InternalError (500)', { status: 500, body: '<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>' }],
  ])('retries %s as the SDK does, and reports the attempts', async (_label, answer) => {
    const ok = { status: 200, body: '<DeleteResult/>' };
    const input = { Bucket: bucket, Delete: { Objects: [{ Key: key, VersionId: 'v1' }], Quiet: true } };
    // Two failures within two attempts: both fail the same way after the same number of requests.
    endpoint.answer(answer, answer, ok);
    const sdk = sdkS3({ endpoint: endpoint.url, credentials: withToken, maxAttempts: 2 });
    const theirs = (await sdk.send(new DeleteObjectsCommand(input)).catch((e: unknown) => e)) as Record<string, unknown>;
    sdk.destroy();
    const sdkRequests = endpoint.requests.length;
    endpoint.requests.length = 0;
    endpoint.answer(answer, answer, ok);
    const ours = ourS3({ endpoint: endpoint.url, credentials: withToken, maxAttempts: 2 });
    const mine = (await ours.deleteObjects(input).catch((e: unknown) => e)) as Record<string, unknown>;
    expect(sdkRequests).toBe(2);
    expect(endpoint.requests).toHaveLength(2);
    expect(errorShape(mine)).toEqual(errorShape(theirs));
    expect(mine.$metadata).toMatchObject({ httpStatusCode: answer.status, attempts: 2 });
    // One failure, then success on the second attempt: the same body both times.
    endpoint.requests.length = 0;
    endpoint.answer(answer, ok);
    const out = await ours.deleteObjects(input);
    ours.destroy();
    expect(out.$metadata).toMatchObject({ httpStatusCode: 200, attempts: 2 });
    expect(endpoint.requests[0]!.body).toEqual(endpoint.requests[1]!.body);
  });

  it('does not retry a refusal (AccessDenied)', async () => {
    endpoint.answer({ status: 403, body: '<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>' });
    const ours = ourS3({ endpoint: endpoint.url, credentials: withToken, maxAttempts: 2 });
    await expect(ours.getObject({ Bucket: bucket, Key: key })).rejects.toMatchObject({ name: 'AccessDenied', $metadata: { attempts: 1 } });
    ours.destroy();
    expect(endpoint.requests).toHaveLength(1);
  });

  describe('presigned URLs', () => {
    const signingDate = new Date('2026-12-01T16:00:00.000Z');
    const put = { Bucket: bucket, Key: key, ContentType: 'application/pdf', ContentLength: 1024, IfNoneMatch: '*' };
    const get = { Bucket: bucket, Key: key, ResponseContentDisposition: 'attachment; filename="r\u00e9sum\u00e9 (1).pdf"; filename*=UTF-8\'\'r%C3%A9sum%C3%A9%20(1).pdf', ResponseContentType: 'application/pdf' };
    const cases = [
      ['in AWS (virtual-hosted)', undefined, bucket, false],
      ['in AWS with a bucket that is no DNS label (path style)', undefined, 'tenant.documents.unit', false],
      ['against an emulator (path style)', 'http://127.0.0.1:4566', bucket, true],
      ['against a named endpoint without forcePathStyle (virtual-hosted)', 'http://localhost:4566', bucket, false],
      ['against an IP endpoint without forcePathStyle (path style)', 'http://127.0.0.1:4566', bucket, false],
    ] as const;
    describe.each(CREDENTIAL_CASES)('%s', (_l, credentials) => {
      it.each(cases)('match getSignedUrl %s', async (_label, at, b, forcePathStyle) => {
        const sdk = sdkS3({ endpoint: at, credentials, forcePathStyle });
        const ours = ourS3({ endpoint: at, credentials, forcePathStyle });
        const signableHeaders = new Set(['content-type', 'content-length', 'if-none-match']);
        expect(await ours.presign('PutObject', { ...put, Bucket: b }, { expiresIn: 900, signingDate, signableHeaders })).toBe(
          await getSignedUrl(sdk, new PutObjectCommand({ ...put, Bucket: b }), { expiresIn: 900, signingDate, signableHeaders }),
        );
        expect(await ours.presign('GetObject', { ...get, Bucket: b }, { expiresIn: 300, signingDate })).toBe(
          await getSignedUrl(sdk, new GetObjectCommand({ ...get, Bucket: b }), { expiresIn: 300, signingDate }),
        );
        expect(await ours.presign('GetObject', { Bucket: b, Key: key }, { expiresIn: 1, signingDate })).toBe(
          await getSignedUrl(sdk, new GetObjectCommand({ Bucket: b, Key: key }), { expiresIn: 1, signingDate }),
        );
        sdk.destroy();
        ours.destroy();
      });
    });
  });

  it('addresses buckets as the SDK\'s endpoint rules do', async () => {
    for (const [at, forcePathStyle, b] of [
      [undefined, false, bucket],
      [undefined, false, 'tenant.documents.unit'],
      [undefined, true, bucket],
      ['http://127.0.0.1:4566', false, bucket],
      ['http://localhost:4566', false, bucket],
      ['http://localhost:4566', false, 'dotted.bucket.name'],
      ['https://s3.example.test/base', false, 'dotted.bucket.name'],
      ['https://s3.example.test/base', true, bucket],
    ] as const) {
      const sdk = sdkS3({ endpoint: at, credentials: withToken, forcePathStyle });
      const resolved = await (sdk.config as unknown as { endpointProvider: (p: object) => { url: URL } }).endpointProvider({
        Bucket: b, Region: region, UseFIPS: false, UseDualStack: false, ForcePathStyle: forcePathStyle, Accelerate: false, UseArnRegion: false, DisableMultiRegionAccessPoints: false, UseGlobalEndpoint: false, ...(at && { Endpoint: at }),
      });
      sdk.destroy();
      const ours = ourS3({ endpoint: at, credentials: withToken, forcePathStyle });
      const { host, path } = ours.address(b, 'k');
      ours.destroy();
      const base = resolved.url.pathname.replace(/\/$/, '');
      expect([at, b, `${resolved.url.protocol}//${host}${path}`]).toEqual([at, b, `${resolved.url.protocol}//${resolved.url.host}${base}/k`]);
    }
  });

  it('ends a call the endpoint never answers after requestTimeout, with a TimeoutError', async () => {
    const frozen = server();
    const frozenUrl = await frozen.start();
    frozen.silence();
    const ours = ourS3({
      endpoint: frozenUrl, credentials: withToken, maxAttempts: 1, requestHandler: { connectionTimeout: 1_000, requestTimeout: 300, throwOnRequestTimeout: true },
    });
    const started = Date.now();
    const error = (await ours.getObject({ Bucket: bucket, Key: key }).catch((e: unknown) => e)) as Record<string, unknown>;
    ours.destroy();
    await frozen.stop();
    expect(error).toMatchObject({ name: 'TimeoutError', $metadata: { attempts: 1 } });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('signs STS with the environment\'s credentials alone, and a tenant\'s S3 client with the tenant\'s alone', async () => {
    await withEnvironment({ AWS_ACCESS_KEY_ID: 'ASIAFUNCTIONROLE', AWS_SECRET_ACCESS_KEY: 'function-secret', AWS_SESSION_TOKEN: 'function-token' }, async () => {
      endpoint.answer({ status: 200, body: assumeRoleAnswer });
      const sts = new StsClient({ region, endpoint: endpoint.url });
      await sts.assumeRole({ RoleArn: 'arn:aws:iam::1:role/r', RoleSessionName: 'acme' });
      sts.destroy();
      endpoint.answer({ status: 200, body: 'x' });
      const tenant = ourS3({ endpoint: endpoint.url, credentials: withToken });
      await tenant.getObject({ Bucket: bucket, Key: key });
      tenant.destroy();
      expect(endpoint.requests.map((r) => [r.headers.authorization!.match(/Credential=(\w+)\//)![1], r.headers['x-amz-security-token']])).toEqual([
        ['ASIAFUNCTIONROLE', 'function-token'],
        [withToken.accessKeyId, withToken.sessionToken],
      ]);

      delete process.env.AWS_ACCESS_KEY_ID;
      const none = new StsClient({ region, endpoint: endpoint.url });
      await expect(none.assumeRole({ RoleArn: 'arn:aws:iam::1:role/r', RoleSessionName: 'acme' })).rejects.toMatchObject({
        name: 'CredentialsProviderError',
        message: 'Unable to find environment variable credentials.',
      });
      none.destroy();
      expect(endpoint.requests).toHaveLength(2);
    });
  });

  it('resolves the regional STS endpoint the SDK resolves', async () => {
    for (const r of ['eu-west-1', 'us-east-1', 'cn-north-1']) {
      const sdk = new SdkStsClient({ region: r });
      const resolved = await (sdk.config as unknown as { endpointProvider: (p: object) => { url: URL } }).endpointProvider({ Region: r, UseFIPS: false, UseDualStack: false, UseGlobalEndpoint: false });
      sdk.destroy();
      const ours = new StsClient({ region: r, credentials: withToken });
      expect(ours.endpoint.href).toBe(resolved.url.href);
      ours.destroy();
    }
  });

  it('is captured by X-Ray as the SDK clients are: the same subsegment, and the trace header on the request', async () => {
    for (const answer of [
      { status: 200, body: 'x', headers: { 'content-length': '1' } },
      { status: 404, body: '<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>' },
    ]) {
      endpoint.requests.length = 0;
      endpoint.answer(answer);
      const sdk = sdkS3({ endpoint: endpoint.url, credentials: withToken });
      const ours = ourS3({ endpoint: endpoint.url, credentials: withToken });
      const theirs = await xraySubsegmentOf(sdk, () => sdk.send(new GetObjectCommand({ Bucket: bucket, Key: key })));
      const mine = await xraySubsegmentOf(ours, () => ours.getObject({ Bucket: bucket, Key: key }));
      sdk.destroy();
      ours.destroy();
      expect(comparableSubsegment(mine)).toEqual(comparableSubsegment(theirs));
      expect(mine).toMatchObject({ name: 'S3', namespace: 'aws', aws: { operation: 'GetObject', region, id_2: 'host-id' } });
      expect(endpoint.requests.map((r) => r.headers['x-amzn-trace-id'])).toEqual([expect.stringMatching(TRACE_HEADER), expect.stringMatching(TRACE_HEADER)]);
    }
    endpoint.answer({ status: 200, body: assumeRoleAnswer, headers: { 'x-amzn-requestid': 'sts-1' } });
    const input = { RoleArn: 'arn:aws:iam::123456789012:role/tenant-access', RoleSessionName: 'acme', DurationSeconds: 900 };
    const sdk = new SdkStsClient({ region, endpoint: endpoint.url, credentials: withToken, maxAttempts: 1 });
    const ours = new StsClient({ region, endpoint: endpoint.url, credentials: withToken, maxAttempts: 1 });
    const theirs = await xraySubsegmentOf(sdk, () => sdk.send(new AssumeRoleCommand(input)));
    const mine = await xraySubsegmentOf(ours, () => ours.assumeRole(input));
    sdk.destroy();
    ours.destroy();
    expect(comparableSubsegment(mine)).toEqual(comparableSubsegment(theirs));
    expect(mine).toMatchObject({ name: 'STS', aws: { operation: 'AssumeRole' } });
  });

  it('reads XML as the answers write it: entities, character references, empty and self-closing elements', () => {
    const root = parseXml('<?xml version="1.0"?><!-- c --><R a="1"><K>a&amp;b&lt;&gt;&quot;&apos;&#233;&#x20AC;</K><E></E><S/><K>2</K></R>');
    expect(root.name).toBe('R');
    expect(root.children.map((c) => [c.name, c.text])).toEqual([['K', 'a&b<>"\'é€'], ['E', ''], ['S', ''], ['K', '2']]);
    expect(() => parseXml('<A><B></A>')).toThrow(/malformed/);
    expect(() => parseXml('not xml')).toThrow(/malformed/);
  });
});
