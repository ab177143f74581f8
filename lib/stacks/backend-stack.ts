/**
 * One environment's backend. This stack only wires constructs together: what each one builds and why is
 * in lib/constructs/. One stack per environment keeps every reference inside one template (no exports
 * that pin resources across stacks); lib/stacks/environment.ts names and tags it per environment.
 */
import { CfnOutput, Fn, Stack, StackProps, Token } from 'aws-cdk-lib';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import { Construct } from 'constructs';
import { backgroundEnvironment, defaultConfig, parseBackgroundConfig, toEnvironment, type AppConfig } from '../../functions/core/config';
import { routeList } from '../../functions/routes';
import type { EnvironmentSettings } from '../config';
import { Api } from '../constructs/api';
import { AuditAnchor } from '../constructs/audit-anchor';
import { Database, DATABASE_NAME, PROXY_PORT, RUNTIME_DB_USER, CONTROL_DB_USER, SEALER_DB_USER } from '../constructs/database';
import { Identity } from '../constructs/identity';
import { JobQueue, JobRunner } from '../constructs/jobs';
import { Network } from '../constructs/network';
import { Observability } from '../constructs/observability';
import { RouteFunctions } from '../constructs/route-functions';
import { TenantStorage } from '../constructs/storage';
import { StorageReconciler } from '../constructs/storage-reconciler';

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
const runtimeDefaults = defaultConfig();

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

    // The request deadline answers 503 before the function times out, which answers before API Gateway.
    const requestDeadlineMs = runtimeDefaults.deadlines.requestMs;
    if (settings.functions.timeout.toMilliseconds() < requestDeadlineMs + 1000) {
      throw new Error(`the function timeout must exceed the request deadline (${requestDeadlineMs} ms) by a second at least`);
    }
    // Long work: the queue exists before the functions that send to it.
    const jobQueue = new JobQueue(this, 'Jobs');
    // The runtime configuration, written through the one environment contract (functions/core/config.ts).
    const runtimeConfig: AppConfig = {
      environment: settings.name,
      deadlines: { requestMs: requestDeadlineMs },
      database: {
        host: database.proxy.endpoint,
        port: PROXY_PORT,
        database: DATABASE_NAME,
        user: RUNTIME_DB_USER,
        iamAuth: true,
        ssl: 'verify-full',
        poolMax: settings.functions.dbPoolMax,
        // Prepared statements stay on (one round trip fewer); pinning is alarmed in Observability.
        prepare: true,
        connectTimeoutSeconds: 5,
        lockTimeoutMs: runtimeDefaults.database.lockTimeoutMs,
        // Only platform functions may log in as it (rds-db:connect is granted per route).
        control: { user: CONTROL_DB_USER },
      },
      aws: { region: this.region },
      storage: {
        bucket: storage.bucket.bucketName,
        tenantAccessRoleArn: storage.tenantAccessRole.roleArn,
        credentialSeconds: TENANT_CREDENTIAL_SECONDS,
        refreshBeforeSeconds: 300,
        presignSeconds: 900,
      },
      auth: {
        userPoolId: identity.userPool.userPoolId,
        clientId: identity.client.userPoolClientId,
        jwksUrl: identity.jwksDataUrl,
      },
      pii: { kmsKeyId: database.piiKey.keyArn, dataKeyCacheSeconds: 300 },
      cors: { allowedOrigins: settings.corsOrigins },
      audit: {},
    };
    // Every function's environment: the runtime configuration and the background settings (job queue, reconciler).
    const environment = {
      ...toEnvironment(runtimeConfig, { regionFromRuntime: true }),
      ...backgroundEnvironment({ jobQueueUrl: jobQueue.queue.queueUrl, reconcileAfterSeconds: parseBackgroundConfig({}).reconcileAfterSeconds }),
    };
    const routes = new RouteFunctions(this, 'Routes', {
      routes: routeList,
      vpc: network.vpc,
      vpcSubnets: network.functionSubnets,
      database,
      storage,
      piiKey: database.piiKey,
      userPool: identity.userPool,
      memoryMiB: settings.functions.memoryMiB,
      timeout: settings.functions.timeout,
      reservedConcurrency: settings.functions.reservedConcurrency,
      logRetention: settings.logRetention,
      jobQueue: jobQueue.queue,
      environment,
    });
    // The schema exists before any route function is created or updated.
    for (const fn of routes.functions.values()) fn.node.addDependency(database.migrations);

    // The audit sealer logs in as app_sealer and needs nothing of storage, identity or PII.
    const anchor = new AuditAnchor(this, 'AuditAnchor', {
      auditAnchor: settings.auditAnchor,
      vpc: network.vpc,
      vpcSubnets: network.functionSubnets,
      database,
      accessLogBucket: storage.accessLogBucket,
      logRetention: settings.logRetention,
      environment: toEnvironment(
        {
          ...runtimeDefaults,
          environment: settings.name,
          database: { ...runtimeConfig.database, user: SEALER_DB_USER, poolMax: 1 },
          aws: runtimeConfig.aws,
        },
        { regionFromRuntime: true },
      ),
    });
    anchor.sealer.node.addDependency(database.migrations);

    const api = new Api(this, 'Api', {
      routes: routeList,
      functions: routes.functions,
      userPool: identity.userPool,
      stageName: STAGE_NAME,
      throttle: settings.throttle,
      logRetention: settings.logRetention,
      removalPolicy: settings.removalPolicy,
      corsOrigins: settings.corsOrigins,
      waf: settings.waf.enabled
        ? { requestsPer5MinPerIp: settings.waf.requestsPer5MinPerIp, requestsPerMinutePerPath: settings.waf.requestsPerMinutePerPath }
        : undefined,
    });

    const observability = new Observability(this, 'Observability', {
      environmentName: settings.name,
      apiName: api.restApi.restApiName,
      stageName: STAGE_NAME,
      proxyName: database.proxy.dbProxyName,
      functions: routes.functions,
      routeLogGroups: routeList.map((route) => routes.functions.get(route.id)!.functionLogs),
      storageLogGroups: routeList
        .filter((route) => route.usesStorage)
        .map((route) => routes.functions.get(route.id)!.functionLogs),
      meteredRouteIds: routeList.filter((route) => route.meters.length > 0).map((route) => route.id),
      p99LatencyMs: settings.alarms.p99LatencyMs,
      serverErrorRatePercent: settings.alarms.serverErrorRatePercent,
    });

    const background = {
      vpc: network.vpc,
      vpcSubnets: network.functionSubnets,
      database,
      storage,
      logRetention: settings.logRetention,
      environmentName: settings.name,
    };
    const jobs = new JobRunner(this, 'JobRunner', jobQueue, {
      ...background,
      piiKey: database.piiKey,
      userPool: identity.userPool,
      memoryMiB: settings.functions.memoryMiB,
      reservedConcurrency: settings.functions.reservedConcurrency,
      environment,
    });
    const reconciler = new StorageReconciler(this, 'StorageReconciler', {
      ...background,
      reserveConcurrency: settings.functions.reservedConcurrency !== undefined,
      environment,
    });
    for (const fn of [jobs.runner, jobs.sweeper, reconciler.reconciler]) fn.node.addDependency(database.migrations);
    for (const alarm of [...jobs.alarms, ...reconciler.alarms]) alarm.addAlarmAction(new actions.SnsAction(observability.alarmTopic));

    if (props.smokeTestPrincipalArn) storage.trustArn(props.smokeTestPrincipalArn);

    new CfnOutput(this, 'ApiUrl', { value: api.restApi.url });
    new CfnOutput(this, 'UserPoolId', { value: identity.userPool.userPoolId });
    new CfnOutput(this, 'UserPoolClientId', { value: identity.client.userPoolClientId });
    new CfnOutput(this, 'TenantBucket', { value: storage.bucket.bucketName });
    new CfnOutput(this, 'TenantAccessRoleArn', { value: storage.tenantAccessRole.roleArn });
    new CfnOutput(this, 'AuditAnchorBucket', { value: anchor.bucket.bucketName });
    new CfnOutput(this, 'JobQueueUrl', { value: jobQueue.queue.queueUrl });
    new CfnOutput(this, 'JobDeadLetterQueueUrl', { value: jobQueue.deadLetterQueue.queueUrl });
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
