/**
 * Scoped S3 credentials of a tenant: `STS AssumeRole` on the tenant-access role **with a session policy
 * for that one tenant** (`storage-policy.ts`), so a bug that builds another tenant's key still gets
 * AccessDenied from S3. The cache holds one session per tenant (one STS call per tenant per container and
 * credential lifetime); concurrent first requests of a tenant share one STS call (single flight); a failed
 * call caches nothing; a session is replaced before it could die under a URL it signed.
 */
import type { AwsServiceOptions } from './aws-client';
import { S3Client } from './aws-s3';
import { StsClient } from './aws-sts';
import { AWS_MAX_ATTEMPTS, AWS_REQUEST_HANDLER } from './aws-timeouts';
import { captureClient, log } from './observability';
import { tenantSessionPolicy } from './storage-policy';
import { assertTenantId } from './tenant';

/** Above this share of the packed session-policy budget, STS is getting close to refusing the call. */
export const PACKED_POLICY_WARN_PERCENT = 50;

/**
 * The function's STS client (the small Query-protocol client, aws-sts.ts): signed with the function's own
 * credentials from the environment, this project's timeouts and retries (aws-timeouts.ts), traced.
 */
export function stsClient(options: AwsServiceOptions): StsClient {
  return captureClient(new StsClient({ requestHandler: AWS_REQUEST_HANDLER, maxAttempts: AWS_MAX_ATTEMPTS, ...options }));
}

/**
 * A tenant's S3 client (the small REST-XML client, aws-s3.ts), signed with that tenant's scoped
 * credentials alone: a client given credentials never signs with any others, the function's own included.
 * Emulators serve buckets by path; AWS by virtual host.
 */
export function tenantS3Client(credentials: TenantCredentials, options: { readonly region: string; readonly endpoint?: string }): S3Client {
  return captureClient(
    new S3Client({
      region: options.region,
      endpoint: options.endpoint,
      forcePathStyle: options.endpoint !== undefined,
      credentials: { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey, sessionToken: credentials.sessionToken },
      requestHandler: AWS_REQUEST_HANDLER,
      maxAttempts: AWS_MAX_ATTEMPTS,
    }),
  );
}

/** Scoped credentials of one STS session. */
export interface TenantCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly expiration: Date;
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

/**
 * One `AssumeRole` of the tenant-access role, always with the tenant's session policy: the only way this
 * code obtains S3 credentials. Exported for the tenant lifecycle (`tenant-objects.ts`) and the deployed
 * smoke test, which must hold raw scoped credentials to try another tenant's prefix; requests go through
 * {@link createSessionCache}.
 */
export async function assumeTenantRole(
  sts: StsClient,
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
  const output = await sts.assumeRole({
    RoleArn: params.roleArn,
    RoleSessionName: roleSessionName(params.tenantId),
    DurationSeconds: params.durationSeconds,
    Policy: policy,
  });
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

/** A tenant's S3 client, signed with its scoped credentials. */
export interface TenantSession {
  readonly client: S3Client;
  readonly expiresAtMs: number;
  /** After this instant the session is replaced: it might not outlive a URL signed now. */
  readonly refreshAtMs: number;
}

export interface SessionCacheOptions {
  readonly sts: StsClient;
  readonly roleArn: string;
  readonly bucket: string;
  readonly region: string;
  readonly endpoint?: string;
  readonly partition?: string;
  readonly credentialSeconds: number;
  /** A session is replaced this long before it expires. */
  readonly marginSeconds: number;
  readonly now: () => number;
}

/** The container's tenant sessions: `session(tenantId, userId)` answers a live one, opening it at most once. */
export function createSessionCache(options: SessionCacheOptions): (tenantId: string, userId: string) => Promise<TenantSession> {
  const sessions = new Map<string, TenantSession>();
  const pending = new Map<string, Promise<TenantSession>>();

  function newSession(credentials: TenantCredentials, requestedAtMs: number): TenantSession {
    const client = tenantS3Client(credentials, options);
    // A session lasts exactly `credentialSeconds` from when STS issued it, which is after we asked: timing
    // it on our own clock is conservative and immune to skew between our clock and STS's `Expiration`.
    const expiresAtMs = requestedAtMs + options.credentialSeconds * 1000;
    return { client, expiresAtMs, refreshAtMs: expiresAtMs - options.marginSeconds * 1000 };
  }

  return function session(tenantId, userId) {
    const cached = sessions.get(tenantId);
    if (cached && options.now() < cached.refreshAtMs) return Promise.resolve(cached);
    let inFlight = pending.get(tenantId);
    if (!inFlight) {
      const requestedAtMs = options.now();
      inFlight = assumeTenantRole(options.sts, {
        roleArn: options.roleArn,
        bucket: options.bucket,
        tenantId,
        userId,
        durationSeconds: options.credentialSeconds,
        partition: options.partition,
      })
        .then((credentials) => {
          const fresh = newSession(credentials, requestedAtMs);
          const t = options.now();
          // Forget sessions that expired (tenants that went quiet), so the map stays as large as the active set.
          for (const [id, s] of sessions) if (s.expiresAtMs <= t) sessions.delete(id);
          sessions.set(tenantId, fresh);
          return fresh;
        })
        .finally(() => pending.delete(tenantId));
      pending.set(tenantId, inFlight);
    }
    return inFlight;
  };
}
