/**
 * One environment's backend. This stack only wires constructs together: what each one builds and why is
 * in lib/constructs/. One stack per environment keeps every reference inside one template (no exports
 * that pin resources across stacks); lib/stacks/environment.ts names and tags it per environment.
 */
import { CfnOutput, Fn, Stack, StackProps, Token } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { routeList } from '../../functions/routes';
import type { EnvironmentSettings } from '../config';
import { Api } from '../constructs/api';
import { Database, DATABASE_NAME, PROXY_PORT, RUNTIME_DB_USER } from '../constructs/database';
import { Identity } from '../constructs/identity';
import { Network } from '../constructs/network';
import { Observability } from '../constructs/observability';
import { RouteFunctions } from '../constructs/route-functions';
import { TenantStorage } from '../constructs/storage';

export interface BackendStackProps extends StackProps {
  readonly settings: EnvironmentSettings;
  /** Changing it re-fetches the Cognito JWKS snapshot on the next deploy. */
  readonly jwksRefreshToken?: string;
  /** A role ARN the tenant-access role also trusts, for `npm run test:deployed` (e.g. the CI deploy role). */
  readonly smokeTestPrincipalArn?: string;
}

/** Lifetime of the scoped STS credentials (the tenant-access role allows one hour). */
const TENANT_CREDENTIAL_SECONDS = 3600;
const STAGE_NAME = 'v1';

export class BackendStack extends Stack {
  constructor(scope: Construct, id: string, props: BackendStackProps) {
    super(scope, id, props);
    const { settings } = props;

    const network = new Network(this, 'Network', {
      cidr: settings.vpcCidr,
      maxAzs: settings.maxAzs,
      flowLogRetention: settings.logRetention,
      removalPolicy: settings.removalPolicy,
    });
    const identity = new Identity(this, 'Identity', {
      ...settings.identity,
      removalPolicy: settings.removalPolicy,
      logRetention: settings.logRetention,
      jwksRefreshToken: props.jwksRefreshToken,
    });
    const storage = new TenantStorage(this, 'Storage', {
      noncurrentVersionDays: settings.noncurrentVersionDays,
      removalPolicy: settings.removalPolicy,
      corsOrigins: settings.corsOrigins,
    });
    const database = new Database(this, 'Database', {
      vpc: network.vpc,
      databaseSubnets: network.databaseSubnets,
      functionSubnets: network.functionSubnets,
      ...settings.database,
      logRetention: settings.logRetention,
    });

    const routes = new RouteFunctions(this, 'Routes', {
      routes: routeList,
      vpc: network.vpc,
      vpcSubnets: network.functionSubnets,
      database,
      storage,
      piiKey: database.piiKey,
      memoryMiB: settings.functions.memoryMiB,
      timeout: settings.functions.timeout,
      logRetention: settings.logRetention,
      // Every variable functions/core/config.ts reads (AWS_REGION is set by Lambda itself).
      environment: {
        APP_ENV: settings.name,
        DB_HOST: database.proxy.endpoint,
        DB_PORT: String(PROXY_PORT),
        DB_NAME: DATABASE_NAME,
        DB_USER: RUNTIME_DB_USER,
        DB_IAM_AUTH: 'true',
        DB_SSL: 'verify-full',
        DB_POOL_MAX: String(settings.functions.dbPoolMax),
        // Prepared statements stay on (one round trip fewer); pinning is alarmed in Observability.
        DB_PREPARE: 'true',
        DB_CONNECT_TIMEOUT_SECONDS: '5',
        TENANT_BUCKET: storage.bucket.bucketName,
        TENANT_ACCESS_ROLE_ARN: storage.tenantAccessRole.roleArn,
        TENANT_CREDENTIAL_SECONDS: String(TENANT_CREDENTIAL_SECONDS),
        TENANT_CREDENTIAL_REFRESH_SECONDS: '300',
        PRESIGN_SECONDS: '900',
        USER_POOL_ID: identity.userPool.userPoolId,
        USER_POOL_CLIENT_ID: identity.client.userPoolClientId,
        JWKS_URL: identity.jwksDataUrl,
        PII_KMS_KEY_ID: database.piiKey.keyArn,
        PII_DATA_KEY_CACHE_SECONDS: '300',
        CORS_ORIGINS: settings.corsOrigins.join(','),
      },
    });
    // The schema exists before any route function is created or updated.
    for (const fn of routes.functions.values()) fn.node.addDependency(database.migrations);

    const api = new Api(this, 'Api', {
      routes: routeList,
      functions: routes.functions,
      userPool: identity.userPool,
      stageName: STAGE_NAME,
      throttle: settings.throttle,
      logRetention: settings.logRetention,
      removalPolicy: settings.removalPolicy,
      corsOrigins: settings.corsOrigins,
      waf: settings.waf.enabled ? { requestsPer5MinPerIp: settings.waf.requestsPer5MinPerIp } : undefined,
    });

    new Observability(this, 'Observability', {
      environmentName: settings.name,
      apiName: api.restApi.restApiName,
      stageName: STAGE_NAME,
      proxyName: database.proxy.dbProxyName,
      functions: routes.functions,
      storageLogGroups: routeList
        .filter((route) => route.usesStorage)
        .map((route) => routes.functions.get(route.id)!.functionLogs),
      meteredRouteIds: routeList.filter((route) => route.meters.length > 0).map((route) => route.id),
      p99LatencyMs: settings.alarms.p99LatencyMs,
      serverErrorRatePercent: settings.alarms.serverErrorRatePercent,
    });

    if (props.smokeTestPrincipalArn) storage.trustArn(props.smokeTestPrincipalArn);

    new CfnOutput(this, 'ApiUrl', { value: api.restApi.url });
    new CfnOutput(this, 'UserPoolId', { value: identity.userPool.userPoolId });
    new CfnOutput(this, 'UserPoolClientId', { value: identity.client.userPoolClientId });
    new CfnOutput(this, 'TenantBucket', { value: storage.bucket.bucketName });
    new CfnOutput(this, 'TenantAccessRoleArn', { value: storage.tenantAccessRole.roleArn });
  }

  /**
   * Availability zones without a context lookup: when the region is known, its `a` and `b` zones (every
   * commercial region has them); environment-agnostic synth keeps CloudFormation's own selection.
   */
  override get availabilityZones(): string[] {
    if (Token.isUnresolved(this.region)) return [Fn.select(0, Fn.getAzs()), Fn.select(1, Fn.getAzs())];
    return ['a', 'b', 'c'].map((suffix) => `${this.region}${suffix}`);
  }
}
