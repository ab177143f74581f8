/**
 * Storage helpers for tests: the emulator's bucket and role (provisioned by the global setup), an STS
 * client (the runtime's, functions/core/aws-sts.ts) that records every AssumeRole request at the middleware level (what actually goes on the
 * wire, not what our code meant to send), and a TCP proxy that can take "the emulator" down and up.
 */
import net from 'node:net';
import { ListObjectVersionsCommand, S3Client } from '@aws-sdk/client-s3';
import { StsClient } from '../../functions/core/aws-sts';
import type { TenantStorageOptions } from '../../functions/core/storage';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: the Jest global setup did not run`);
  return value;
}

/** Settings of the emulator's tenant storage, as the global setup provisioned it. */
export function emulatorStorage(): { endpoint: string; region: string; bucket: string; roleArn: string } {
  return {
    endpoint: required('TEST_AWS_ENDPOINT_URL'),
    region: process.env.AWS_REGION ?? 'us-east-1',
    bucket: required('TEST_TENANT_BUCKET'),
    roleArn: required('TEST_TENANT_ACCESS_ROLE_ARN'),
  };
}

/** An unscoped S3 client of the emulator (the test process's own keys): what tests use to look, never the runtime. */
export function emulatorS3(): S3Client {
  const env = emulatorStorage();
  return new S3Client({ region: env.region, endpoint: env.endpoint, forcePathStyle: true });
}

/** One object version (or delete marker) under a tenant's documents prefix. */
export interface StoredVersion {
  readonly documentId: string;
  readonly versionId: string | undefined;
  readonly sizeBytes: number;
  readonly isLatest: boolean;
  readonly deleteMarker: boolean;
}

/**
 * Every object version and delete marker under `tenants/{tenantId}/documents/`, read with the emulator's
 * unscoped keys: what a tenant really stores, whatever the API thinks it does.
 */
export async function storedVersions(tenantId: string, bucket = emulatorStorage().bucket): Promise<StoredVersion[]> {
  const prefix = `tenants/${tenantId}/documents/`;
  const s3 = emulatorS3();
  const found: StoredVersion[] = [];
  let keyMarker: string | undefined;
  let versionIdMarker: string | undefined;
  try {
    for (;;) {
      const page = await s3.send(
        new ListObjectVersionsCommand({ Bucket: bucket, Prefix: prefix, KeyMarker: keyMarker, VersionIdMarker: versionIdMarker }),
      );
      for (const v of page.Versions ?? []) {
        found.push({ documentId: v.Key!.slice(prefix.length), versionId: v.VersionId, sizeBytes: v.Size ?? 0, isLatest: v.IsLatest === true, deleteMarker: false });
      }
      for (const m of page.DeleteMarkers ?? []) {
        found.push({ documentId: m.Key!.slice(prefix.length), versionId: m.VersionId, sizeBytes: 0, isLatest: m.IsLatest === true, deleteMarker: true });
      }
      if (!page.IsTruncated) return found;
      keyMarker = page.NextKeyMarker;
      versionIdMarker = page.NextVersionIdMarker;
    }
  } finally {
    s3.destroy();
  }
}

/** The tenant's current documents in the bucket (latest versions, neither delete markers nor empty tombstones). */
export async function storedDocuments(tenantId: string): Promise<{ documentId: string; sizeBytes: number }[]> {
  return (await storedVersions(tenantId))
    .filter((v) => v.isLatest && !v.deleteMarker && v.sizeBytes > 0)
    .map(({ documentId, sizeBytes }) => ({ documentId, sizeBytes }));
}

/** The form parameters of one STS request as serialized by the SDK (awsQuery: `Action=AssumeRole&…`). */
export type StsRequest = Record<string, string>;

export interface RecordingSts {
  readonly sts: StsClient;
  /** Every STS operation sent, in order (one entry per operation, not per retry). */
  readonly requests: StsRequest[];
}

/** An STS client for `endpoint` that records each serialized request body. */
export function recordingSts(endpoint: string, region = 'us-east-1', clientOptions: { maxAttempts?: number } = {}): RecordingSts {
  const sts = new StsClient({ region, endpoint, ...clientOptions });
  const requests: StsRequest[] = [];
  sts.middlewareStack.add(
    (next) => async (args) => {
      const body = args.request.body;
      requests.push(Object.fromEntries(new URLSearchParams(body === undefined ? '' : Buffer.from(body).toString('utf8'))));
      return next(args);
    },
    // The build step runs once per operation, after serialization and before retries.
    { step: 'build', name: 'recordStsRequests' },
  );
  return { sts, requests };
}

/** Options for `createTenantStorage` against the emulator, with a recording STS client. */
export function emulatorStorageOptions(overrides: Partial<TenantStorageOptions> = {}): TenantStorageOptions & {
  requests: StsRequest[];
} {
  const env = emulatorStorage();
  const { sts, requests } = recordingSts(overrides.endpoint ?? env.endpoint, env.region);
  return { ...env, sts, requests, ...overrides };
}

/** A TCP forwarder to `target` that can be taken down (connections refused and cut) and brought back. */
export class SwitchableProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  /** A proxy on a free port, initially down: nothing listens there. */
  static async create(targetEndpoint: string): Promise<SwitchableProxy> {
    const url = new URL(targetEndpoint);
    const probe = net.createServer();
    const port = await new Promise<number>((resolve) =>
      probe.listen(0, '127.0.0.1', () => {
        const address = probe.address() as net.AddressInfo;
        probe.close(() => resolve(address.port));
      }),
    );
    return new SwitchableProxy(port, { host: url.hostname, port: Number(url.port) });
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async up(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.target);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.once('close', () => this.sockets.delete(socket));
        socket.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.server = server;
  }

  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
