/**
 * Provisions in an AWS emulator what the CDK stack provisions in AWS for tenant storage: the bucket and
 * the tenant-access role with its identity policy (the very document `lib/` attaches, from
 * `functions/core/storage-policy.ts`). Idempotent, so the local stack can run it at every start.
 */
import {
  CreateBucketCommand,
  HeadBucketCommand,
  PutBucketCorsCommand,
  PutPublicAccessBlockCommand,
  S3Client,
  type BucketLocationConstraint,
} from '@aws-sdk/client-s3';
import {
  CreateRoleCommand,
  GetRoleCommand,
  IAMClient,
  PutRolePolicyCommand,
  UpdateAssumeRolePolicyCommand,
} from '@aws-sdk/client-iam';
import { bucketCorsRule } from '../../functions/core/cors';
import { tenantAccessRolePolicy } from '../../functions/core/storage-policy';

/** The account moto (and LocalStack) pretend to be unless told otherwise. */
export const EMULATOR_ACCOUNT_ID = '123456789012';

export interface ProvisionStorageOptions {
  readonly endpoint: string;
  readonly region: string;
  readonly bucket: string;
  readonly roleName: string;
  /** Who may assume the role. @default the emulator account's root */
  readonly trustedPrincipalArn?: string;
  /** Must cover the runtime's TENANT_CREDENTIAL_SECONDS. @default 43200 */
  readonly maxSessionSeconds?: number;
  /** @default the SDK's provider chain (the environment) */
  readonly credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Browser origins allowed to PUT and GET through presigned URLs (the bucket's CORS rule). @default none */
  readonly corsOrigins?: readonly string[];
}

export interface ProvisionedStorage {
  readonly bucket: string;
  readonly roleArn: string;
}

function errorName(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null ? (error as { name?: string }).name : undefined;
}

/** Creates the bucket (private) and the tenant-access role if absent, and (re)writes the role's policies. */
export async function provisionStorage(options: ProvisionStorageOptions): Promise<ProvisionedStorage> {
  const common = { region: options.region, endpoint: options.endpoint, credentials: options.credentials };
  const s3 = new S3Client({ ...common, forcePathStyle: true });
  const iam = new IAMClient(common);
  try {
    const exists = await s3.send(new HeadBucketCommand({ Bucket: options.bucket })).then(
      () => true,
      (error: unknown) => {
        if (errorName(error) === 'NotFound') return false;
        throw error;
      },
    );
    if (!exists) {
      await s3.send(
        new CreateBucketCommand({
          Bucket: options.bucket,
          // us-east-1 is the one region that refuses an explicit location constraint.
          CreateBucketConfiguration:
            options.region === 'us-east-1'
              ? undefined
              : { LocationConstraint: options.region as BucketLocationConstraint },
        }),
      );
    }
    await s3.send(
      new PutPublicAccessBlockCommand({
        Bucket: options.bucket,
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          IgnorePublicAcls: true,
          BlockPublicPolicy: true,
          RestrictPublicBuckets: true,
        },
      }),
    );

    if (options.corsOrigins && options.corsOrigins.length > 0) {
      await s3.send(
        new PutBucketCorsCommand({ Bucket: options.bucket, CORSConfiguration: { CORSRules: [bucketCorsRule(options.corsOrigins)] } }),
      );
    }

    const trust = JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { AWS: options.trustedPrincipalArn ?? `arn:aws:iam::${EMULATOR_ACCOUNT_ID}:root` },
          Action: 'sts:AssumeRole',
        },
      ],
    });
    let roleArn: string;
    try {
      const created = await iam.send(
        new CreateRoleCommand({
          RoleName: options.roleName,
          AssumeRolePolicyDocument: trust,
          MaxSessionDuration: options.maxSessionSeconds ?? 43200,
          Description: 'Tenant access: assumed only with a per-tenant session policy',
        }),
      );
      roleArn = created.Role!.Arn!;
    } catch (error) {
      if (errorName(error) !== 'EntityAlreadyExistsException') throw error;
      await iam.send(new UpdateAssumeRolePolicyCommand({ RoleName: options.roleName, PolicyDocument: trust }));
      roleArn = (await iam.send(new GetRoleCommand({ RoleName: options.roleName }))).Role!.Arn!;
    }
    await iam.send(
      new PutRolePolicyCommand({
        RoleName: options.roleName,
        PolicyName: 'tenant-access',
        PolicyDocument: JSON.stringify(tenantAccessRolePolicy(options.bucket)),
      }),
    );
    return { bucket: options.bucket, roleArn };
  } finally {
    s3.destroy();
    iam.destroy();
  }
}
