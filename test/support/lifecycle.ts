/**
 * The tenant lifecycle's dependencies against the emulator, all reached through one switchable proxy so
 * that a test can take "AWS" down and up between or inside steps: a Cognito pool of its own (email as
 * username, like CDK), a KMS key, a versioned bucket with its tenant-access role, and a platform operator.
 */
import { randomUUID } from 'node:crypto';
import { PutBucketVersioningCommand, S3Client } from '@aws-sdk/client-s3';
import { provisionStorage } from '../../bin/stack/aws';
import { provisionIdentity, provisionPiiKey, type EmulatorAccess } from '../../bin/stack/identity';
import { cognitoClient, createUserDirectory, type UserDirectory } from '../../functions/core/cognito';
import type { Sql } from '../../functions/core/db';
import { createPii, kmsClient, type Pii } from '../../functions/core/pii';
import { createTenantObjects, type TenantObjectsProvider } from '../../functions/core/tenant-objects';
import type { Actor } from '../../functions/lifecycle/control';
import { SwitchableProxy } from './storage';
import { StsClient } from '../../functions/core/aws-sts';

export const LOCAL_PASSWORD = 'Lifecycle-Test-Passw0rd';

export interface LifecycleWorld {
  readonly proxy: SwitchableProxy;
  /** Direct access to the emulator (never through the proxy), for checks. */
  readonly access: EmulatorAccess;
  readonly userPoolId: string;
  readonly clientId: string;
  readonly bucket: string;
  readonly pii: Pii;
  readonly directory: UserDirectory;
  readonly objects: TenantObjectsProvider;
  readonly s3: S3Client;
  readonly operator: Actor;
  close(): Promise<void>;
}

export async function lifecycleWorld(admin: Sql, name: string): Promise<LifecycleWorld> {
  const endpoint = process.env.TEST_AWS_ENDPOINT_URL!;
  const region = process.env.AWS_REGION ?? 'us-east-1';
  const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };
  const access: EmulatorAccess = { endpoint, region, credentials };
  const suffix = randomUUID().slice(0, 8);
  const identity = await provisionIdentity(access, { poolName: `${name}-${suffix}`, users: [], password: LOCAL_PASSWORD });
  const keyId = await provisionPiiKey(access, `alias/${name}-${suffix}`);
  const storage = await provisionStorage({ endpoint, region, bucket: `${name}-${suffix}`, roleName: `${name}-${suffix}`, credentials });
  const s3 = new S3Client({ region, endpoint, forcePathStyle: true, credentials });
  await s3.send(new PutBucketVersioningCommand({ Bucket: storage.bucket, VersioningConfiguration: { Status: 'Enabled' } }));

  const proxy = await SwitchableProxy.create(endpoint);
  await proxy.up();
  const via = { region, endpoint: proxy.endpoint, credentials, maxAttempts: 1 };
  const kms = kmsClient(via);
  const cognito = cognitoClient(via);
  const sts = new StsClient(via);
  const operator: Actor = { userId: randomUUID(), role: 'superadmin', requestId: `req-${suffix}` };
  await admin`insert into app.platform_operators (user_id, status) values (${operator.userId}, 'active')`;
  return {
    proxy,
    access,
    userPoolId: identity.userPoolId,
    clientId: identity.clientId,
    bucket: storage.bucket,
    pii: createPii({ kms, keyId, cacheSeconds: 300 }),
    directory: createUserDirectory({ cognito, userPoolId: identity.userPoolId, localPassword: LOCAL_PASSWORD }),
    objects: createTenantObjects({ bucket: storage.bucket, roleArn: storage.roleArn, region, endpoint: proxy.endpoint, sts }),
    s3,
    operator,
    async close() {
      await proxy.down();
      for (const c of [kms, cognito, sts, s3]) c.destroy();
    },
  };
}
