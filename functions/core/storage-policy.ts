/**
 * The IAM policy documents of tenant storage, as plain JSON. Two layers, and a request is allowed only
 * where both allow it (AWS intersects a role's identity policy with the session policy of the STS
 * session that uses it):
 *  - {@link tenantAccessRolePolicy}: the tenant-access role's own identity policy, bounded to
 *    `tenants/*` of the one bucket. `lib/` attaches it to the role (`iam.PolicyDocument.fromJson`).
 *  - {@link tenantSessionPolicy}: passed to every `AssumeRole`, narrowing the session to one tenant.
 *
 * Pure functions with no SDK import, so that CDK code and the runtime share the very same documents and
 * the policy-simulation tests prove what is deployed.
 *
 * Prefix confusion: S3 prefixes are plain strings, so `tenants/acme*` would also match
 * `tenants/acme-evil/…`. Every pattern here therefore ends the tenant segment with a `/` before any
 * wildcard; the slug rule (no `/` in a tenant id) makes that slash the end of the tenant's name.
 */
import { assertTenantId } from './tenant';

/** An IAM policy document (the subset these policies use). */
export interface PolicyDocument {
  readonly Version: '2012-10-17';
  readonly Statement: readonly PolicyStatement[];
}

export interface PolicyStatement {
  readonly Sid: string;
  readonly Effect: 'Allow' | 'Deny';
  readonly Action: string | readonly string[];
  readonly Resource: string | readonly string[];
  readonly Condition?: Readonly<Record<string, Readonly<Record<string, string | readonly string[]>>>>;
}

/**
 * What a tenant session may do to its objects; `HeadObject` is authorized as `s3:GetObject`.
 * `s3:DeleteObjectVersion` lets offboarding remove every version and delete marker of the tenant's own
 * keys (the bucket is versioned), with the tenant's own scoped session rather than a broader one.
 */
export const TENANT_OBJECT_ACTIONS = ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:DeleteObjectVersion'] as const;

/** Listing the tenant's keys and their versions, both only under the tenant's prefix (`s3:prefix`). */
export const TENANT_LISTING_ACTIONS = ['s3:ListBucket', 's3:ListBucketVersions'] as const;

/** Every key of tenant data lives under this prefix; the role can reach nothing else in the bucket. */
export const TENANTS_PREFIX = 'tenants/';

// S3 bucket naming rules (lower case, digits, dots, hyphens; 3–63 characters).
const BUCKET_PATTERN = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** The key prefix of one tenant, always ending in `/` so that `acme` never covers `acme-evil`. */
export function tenantPrefix(tenantId: string): string {
  return `${TENANTS_PREFIX}${assertTenantId(tenantId)}/`;
}

function bucketArn(partition: string, bucket: string): string {
  return `arn:${partition}:s3:::${bucket}`;
}

/**
 * The session policy for one tenant: object actions on `tenants/{tenantId}/*` and `ListBucket` only
 * with an `s3:prefix` inside `tenants/{tenantId}/`. A listing without a prefix, or with `tenants/acme`
 * (no slash, which would reveal `acme-evil`'s keys), does not match `StringLike` and is denied.
 *
 * Throws `InvalidTenantIdError` for a tenant id that breaks the slug rule and a plain `Error` for a
 * bucket name that is not one (a `*` in it would widen the policy).
 */
export function tenantSessionPolicy(bucket: string, tenantId: string, partition = 'aws'): PolicyDocument {
  if (!BUCKET_PATTERN.test(bucket)) throw new Error(`not an S3 bucket name: ${JSON.stringify(bucket)}`);
  const prefix = tenantPrefix(tenantId);
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'TenantObjects',
        Effect: 'Allow',
        Action: [...TENANT_OBJECT_ACTIONS],
        Resource: `${bucketArn(partition, bucket)}/${prefix}*`,
      },
      {
        Sid: 'TenantListing',
        Effect: 'Allow',
        Action: [...TENANT_LISTING_ACTIONS],
        Resource: bucketArn(partition, bucket),
        // `*` also matches the empty string, so `tenants/acme/` itself is covered.
        Condition: { StringLike: { 's3:prefix': `${prefix}*` } },
      },
    ],
  };
}

/**
 * The tenant-access role's identity policy: the same actions, bounded to `tenants/*` of one bucket.
 * `bucketName` may be a CDK token (it is only concatenated, never parsed); `partition` may be
 * `Aws.PARTITION`.
 */
export function tenantAccessRolePolicy(bucketName: string, partition = 'aws'): PolicyDocument {
  // A wildcard in the name would make the bound meaningless; tokens never contain one.
  if (bucketName === '' || /[*?/]/.test(bucketName)) {
    throw new Error(`not an S3 bucket name: ${JSON.stringify(bucketName)}`);
  }
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'TenantObjects',
        Effect: 'Allow',
        Action: [...TENANT_OBJECT_ACTIONS],
        Resource: `${bucketArn(partition, bucketName)}/${TENANTS_PREFIX}*`,
      },
      {
        Sid: 'TenantListing',
        Effect: 'Allow',
        Action: [...TENANT_LISTING_ACTIONS],
        Resource: bucketArn(partition, bucketName),
        Condition: { StringLike: { 's3:prefix': `${TENANTS_PREFIX}*` } },
      },
    ],
  };
}
