/**
 * Tenant storage: the one bucket every tenant's documents live in (under `tenants/{tenantId}/`), its
 * access-log bucket, and the tenant-access role that functions assume with a per-tenant session policy.
 *
 * The role's own policy is exactly `tenantAccessRolePolicy()` from functions/core/storage-policy.ts, the
 * document the storage proofs simulate, so what the tests prove is what is deployed. Its trust policy
 * names only the roles of routes that use storage (added with {@link TenantStorage.trust}).
 */
import { Aws, Duration, Lazy, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { bucketCorsRule } from '../../functions/core/cors';
import { tenantAccessRolePolicy } from '../../functions/core/storage-policy';

export interface TenantStorageProps {
  /** Days noncurrent object versions are kept before they expire. */
  readonly noncurrentVersionDays: number;
  /** Bucket, key and log bucket on stack deletion. @default RemovalPolicy.RETAIN */
  readonly removalPolicy?: RemovalPolicy;
  /** Lifetime of the scoped STS sessions; the role's maximum session duration. @default 1 hour */
  readonly maxSessionDuration?: Duration;
  /** Browser origins allowed to PUT and GET through presigned URLs (the API's CORS origins). @default none */
  readonly corsOrigins?: readonly string[];
}

/** A trust principal whose role ARNs are collected while the stack is built and resolved at synth. */
class TrustedRoles extends iam.PrincipalBase {
  readonly roles: iam.IRole[] = [];
  /** Principals outside the stack (the deployed smoke test's role), by ARN. */
  readonly arns: string[] = [];
  get policyFragment(): iam.PrincipalPolicyFragment {
    return new iam.PrincipalPolicyFragment({
      AWS: Lazy.list({ produce: () => [...this.roles.map((role) => role.roleArn), ...this.arns] }),
    });
  }
  dedupeString(): string | undefined {
    return undefined;
  }
  override toString(): string {
    return 'TrustedRoles';
  }
}

/** functions/core/cors.ts's bucket rule (shared with the local emulator) in the construct's shape. */
function corsRule(origins: readonly string[]): s3.CorsRule {
  const rule = bucketCorsRule(origins);
  return {
    allowedOrigins: rule.AllowedOrigins,
    allowedMethods: rule.AllowedMethods.map((m) => m as s3.HttpMethods),
    allowedHeaders: rule.AllowedHeaders,
    exposedHeaders: rule.ExposeHeaders,
    maxAge: rule.MaxAgeSeconds,
  };
}

export class TenantStorage extends Construct {
  public readonly bucket: s3.Bucket;
  public readonly accessLogBucket: s3.Bucket;
  public readonly bucketKey: kms.Key;
  /** Assumed with a session policy per tenant; bounded to `tenants/*` by its own policy. */
  public readonly tenantAccessRole: iam.Role;
  private readonly trusted = new TrustedRoles();
  /** An IAM path of this stack's tenant-access role only. */
  private readonly rolePath = `/tenant-access/${Stack.of(this).stackName}/`;

  constructor(scope: Construct, id: string, props: TenantStorageProps) {
    super(scope, id);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    this.accessLogBucket = new s3.Bucket(this, 'AccessLogs', {
      // S3 server access logging delivers only to SSE-S3 buckets.
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ expiration: Duration.days(365) }],
      removalPolicy,
    });
    Validations.of(this.accessLogBucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason: 'This is the access-log target of the tenant bucket; logging its own access would recurse.',
    });

    this.bucketKey = new kms.Key(this, 'BucketKey', {
      description: 'Encrypts the tenant documents bucket',
      enableKeyRotation: true,
      removalPolicy,
    });
    this.bucket = new s3.Bucket(this, 'TenantDocuments', {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.bucketKey,
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
      lifecycleRules: [
        {
          noncurrentVersionExpiration: Duration.days(props.noncurrentVersionDays),
          abortIncompleteMultipartUploadAfter: Duration.days(1),
          expiredObjectDeleteMarker: true,
        },
      ],
      serverAccessLogsBucket: this.accessLogBucket,
      serverAccessLogsPrefix: 'tenant-documents/',
      cors: props.corsOrigins && props.corsOrigins.length > 0 ? [corsRule(props.corsOrigins)] : undefined,
      removalPolicy,
    });

    this.tenantAccessRole = new iam.Role(this, 'TenantAccessRole', {
      description: 'Assumed by storage routes with a per-tenant session policy; bounded to tenants/*',
      // The key policy below names the role by this path: naming it by ARN would make a cycle
      // (key → role → bucket → key).
      path: this.rolePath,
      assumedBy: this.trusted,
      maxSessionDuration: props.maxSessionDuration ?? Duration.hours(1),
      inlinePolicies: {
        TenantObjects: iam.PolicyDocument.fromJson(tenantAccessRolePolicy(this.bucket.bucketName, Aws.PARTITION)),
      },
    });
    Validations.of(this.tenantAccessRole).acknowledge({
      id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::<${Stack.of(this).getLogicalId(
        this.bucket.node.defaultChild as s3.CfnBucket,
      )}>/tenants/*]`,
      reason:
        'The role is bounded to the tenants/ prefix; every AssumeRole narrows it to tenants/{tenantId}/ with a session policy (proved by the storage policy simulation tests).',
    });

    // SSE-KMS under scoped sessions: the session policy allows S3 actions only, so the key policy grants
    // the tenant-access role's sessions use of the key *through S3 only* (as the aws/s3 key does), rather
    // than an identity grant that the session policy would cut off.
    this.bucketKey.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'TenantSessionsThroughS3',
        principals: [new iam.AnyPrincipal()],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey', 'kms:Encrypt'],
        resources: ['*'],
        conditions: {
          StringEquals: { 'kms:CallerAccount': Aws.ACCOUNT_ID, 'kms:ViaService': `s3.${Aws.REGION}.amazonaws.com` },
          ArnLike: { 'aws:PrincipalArn': `arn:${Aws.PARTITION}:iam::${Aws.ACCOUNT_ID}:role${this.rolePath}*` },
        },
      }),
    );

    this.node.addValidation({
      validate: () => (this.trusted.roles.length === 0 ? ['The tenant-access role trusts no route role: call trust()'] : []),
    });
  }

  /**
   * Lets a principal outside the stack assume the tenant-access role (its own policy must allow
   * sts:AssumeRole): the deployed smoke test proves the session policies with real STS credentials.
   * Every session it opens is still narrowed by the session policy the smoke test passes.
   */
  trustArn(principalArn: string): void {
    this.trusted.arns.push(principalArn);
  }

  /** Lets `role` assume the tenant-access role: the trust policy names it, and its policy allows the call. */
  trust(role: iam.IRole): void {
    this.trusted.roles.push(role);
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['sts:AssumeRole'], resources: [this.tenantAccessRole.roleArn] }),
    );
  }
}
