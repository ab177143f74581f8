/**
 * The environment's database: RDS PostgreSQL 17 (KMS-encrypted, IAM authentication on, TLS forced by the
 * parameter group, backups; Multi-AZ and deletion protection where the settings say so), an RDS Proxy in
 * front of it with end-to-end IAM authentication and TLS required, the master secret in Secrets Manager
 * with rotation, and the migration custom resource that applies db/migrations on every deploy.
 *
 * Who may talk to whom is decided by security groups here: functions → proxy → database; the migration
 * function and the secret rotation function → database. Nothing else reaches port 5432.
 *
 * Functions log in as `app_runtime` with an IAM token (`rds-db:connect` on that one user of the proxy,
 * see {@link Database.grantRuntimeConnect}); the proxy in turn logs in to the instance with IAM as the same
 * user (DefaultAuthScheme IAM_AUTH), so no database password exists outside the master secret, and the
 * master secret is read only by the migration function.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ArnFormat, CustomResource, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import type { DatabaseSettings } from '../config';
import { acknowledgeCustomResourceFindings } from './identity';
import { PROJECT_ROOT, TenantFunction } from './tenant-function';

/** The database name, the runtime role and the master user (see db/migrations/0001_roles.sql). */
export const DATABASE_NAME = 'app';
export const RUNTIME_DB_USER = 'app_runtime';
/** The control-plane login role: only platform functions (and the job runner) may connect as it. */
export const CONTROL_DB_USER = 'app_control';
/** The audit sealer's login role (migration 0008): only the scheduled sealer connects as it. */
export const SEALER_DB_USER = 'app_sealer';
export const MASTER_USER = 'app_admin';
/** RDS Proxy listens on the engine's default port. */
export const PROXY_PORT = 5432;

/** Where the database lives, plus its settings (lib/config.ts). */
export interface DatabaseProps extends DatabaseSettings {
  readonly vpc: ec2.IVpc;
  /** Isolated subnets of the instance and the proxy. */
  readonly databaseSubnets: ec2.SubnetSelection;
  /** Subnets of the migration and rotation functions (they reach Secrets Manager through an endpoint). */
  readonly functionSubnets: ec2.SubnetSelection;
  readonly logRetention: logs.RetentionDays;
  /** Where db/migrations lives. @default `<repo>/db/migrations` */
  readonly migrationsDir?: string;
}

/** A stable hash of every migration file (name and content): the migration resource re-runs when it changes. */
export function migrationsHash(dir: string): string {
  const hash = createHash('sha256');
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.sql')).sort()) {
    hash.update(name).update('\0').update(readFileSync(path.join(dir, name))).update('\0');
  }
  return hash.digest('hex');
}

export class Database extends Construct {
  public readonly instance: rds.DatabaseInstance;
  public readonly proxy: rds.DatabaseProxy;
  /** The master user's secret (rotated); read only by the migration function. */
  public readonly masterSecret: secretsmanager.ISecret;
  public readonly storageKey: kms.Key;
  /**
   * Wraps each tenant's PII data key (encryption context {tenant_id}). Offboarding a tenant destroys its
   * wrapped data key, which makes its PII unreadable, backups included.
   */
  public readonly piiKey: kms.Key;
  public readonly instanceSecurityGroup: ec2.SecurityGroup;
  public readonly proxySecurityGroup: ec2.SecurityGroup;
  /** Functions that connect through the proxy use this group. */
  public readonly clientSecurityGroup: ec2.SecurityGroup;
  public readonly migrationFunction: TenantFunction;
  public readonly migrations: CustomResource;

  constructor(scope: Construct, id: string, props: DatabaseProps) {
    super(scope, id);
    const { vpc } = props;
    this.instanceSecurityGroup = new ec2.SecurityGroup(this, 'InstanceSg', {
      vpc,
      description: 'Postgres instance: reachable from the proxy, the migration and the rotation functions only',
      allowAllOutbound: false,
    });
    this.proxySecurityGroup = new ec2.SecurityGroup(this, 'ProxySg', {
      vpc,
      description: 'RDS Proxy: reachable from route functions only',
      allowAllOutbound: false,
    });
    this.clientSecurityGroup = new ec2.SecurityGroup(this, 'ClientSg', {
      vpc,
      description: 'Route functions: Postgres to the proxy, HTTPS to VPC endpoints (no internet route exists)',
      allowAllOutbound: false,
    });
    const migrationSg = new ec2.SecurityGroup(this, 'MigrationSg', {
      vpc,
      description: 'Migration function: Postgres to the instance, HTTPS to VPC endpoints',
      allowAllOutbound: false,
    });
    for (const sg of [this.clientSecurityGroup, migrationSg, this.proxySecurityGroup]) {
      // Only VPC endpoints (and the S3 gateway) answer on 443: the subnets have no internet route.
      sg.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS to AWS through VPC endpoints');
    }

    this.storageKey = new kms.Key(this, 'StorageKey', {
      description: 'Encrypts the Postgres instance storage, snapshots and Performance Insights',
      enableKeyRotation: true,
      removalPolicy: props.removalPolicy === RemovalPolicy.DESTROY ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
    });
    this.piiKey = new kms.Key(this, 'PiiKey', {
      description: 'Wraps per-tenant PII data keys (encryption context tenant_id)',
      enableKeyRotation: true,
      removalPolicy: props.removalPolicy === RemovalPolicy.DESTROY ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
    });
    const engine = rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_17_9 });
    const parameterGroup = new rds.ParameterGroup(this, 'Parameters', {
      engine,
      description: 'TLS forced; IAM and SCRAM only',
      parameters: {
        'rds.force_ssl': '1',
        'ssl_min_protocol_version': 'TLSv1.2',
        'password_encryption': 'scram-sha-256',
        'log_min_duration_statement': '1000',
      },
    });
    this.instance = new rds.DatabaseInstance(this, 'Instance', {
      engine,
      instanceType: props.instanceType,
      vpc,
      vpcSubnets: props.databaseSubnets,
      securityGroups: [this.instanceSecurityGroup],
      credentials: rds.Credentials.fromGeneratedSecret(MASTER_USER),
      databaseName: DATABASE_NAME,
      parameterGroup,
      iamAuthentication: true,
      storageEncrypted: true,
      storageEncryptionKey: this.storageKey,
      storageType: rds.StorageType.GP3,
      allocatedStorage: props.allocatedStorageGiB,
      maxAllocatedStorage: props.maxAllocatedStorageGiB,
      multiAz: props.multiAz,
      deletionProtection: props.deletionProtection,
      backupRetention: props.backupRetention,
      copyTagsToSnapshot: true,
      autoMinorVersionUpgrade: true,
      publiclyAccessible: false,
      caCertificate: rds.CaCertificate.RDS_CA_RSA2048_G1,
      cloudwatchLogsExports: ['postgresql', 'upgrade'],
      cloudwatchLogsRetention: props.logRetention,
      removalPolicy: props.removalPolicy,
    });
    this.masterSecret = this.instance.secret!;
    // Exporting logs with a retention uses CDK's log-retention function (one per stack).
    const logRetention = Stack.of(this).node.tryFindChild('LogRetentionaae0aa3c5b4d4f87b02d85b201efdd8a');
    if (logRetention) {
      Validations.of(logRetention).acknowledge(
        {
          id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
          reason: "CDK's log-retention function (sets the retention of the database's exported logs) writes only its own logs.",
        },
        {
          id: 'AwsSolutions-IAM5[Resource::*]',
          reason: "CDK's log-retention function sets retention on log groups whose names RDS decides.",
        },
      );
    }
    this.instance.addRotationSingleUser({
      automaticallyAfter: props.masterRotation,
      vpcSubnets: props.functionSubnets,
    });
    Validations.of(this.instance).acknowledge({
      id: 'AwsSolutions-RDS11',
      reason: 'A non-default port adds no protection here: only the proxy, migration and rotation security groups reach the instance.',
    });
    if (!props.multiAz) {
      Validations.of(this.instance).acknowledge({
        id: 'AwsSolutions-RDS3',
        reason: 'Single-AZ outside prod to halve the cost; prod runs Multi-AZ (per-environment setting).',
      });
    }
    if (!props.deletionProtection) {
      Validations.of(this.instance).acknowledge({
        id: 'AwsSolutions-RDS10',
        reason: 'Deletion protection is on in prod; dev and staging must be deletable by `cdk destroy`.',
      });
    }

    // The proxy logs in to the instance with IAM as the connecting user: it needs rds-db:connect on the
    // instance's app_runtime, app_control and app_sealer users (and on nothing else).
    const proxyRole = new iam.Role(this, 'ProxyRole', {
      assumedBy: new iam.ServicePrincipal('rds.amazonaws.com'),
      description: 'RDS Proxy: IAM login to the instance as app_runtime, app_control and app_sealer',
    });
    proxyRole.addToPolicy(
      new iam.PolicyStatement({
        actions: ['rds-db:connect'],
        resources: [RUNTIME_DB_USER, CONTROL_DB_USER, SEALER_DB_USER].map((user) =>
          Stack.of(this).formatArn({
            service: 'rds-db',
            resource: 'dbuser',
            resourceName: `${this.instance.instanceResourceId}/${user}`,
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
        ),
      }),
    );
    this.proxy = new rds.DatabaseProxy(this, 'Proxy', {
      proxyTarget: rds.ProxyTarget.fromInstance(this.instance),
      vpc,
      vpcSubnets: props.databaseSubnets,
      securityGroups: [this.proxySecurityGroup],
      role: proxyRole,
      defaultAuthScheme: rds.DefaultAuthScheme.IAM_AUTH,
      iamAuth: true,
      requireTLS: true,
      debugLogging: false,
      idleClientTimeout: Duration.minutes(15),
    });

    // function → proxy → database; migration and rotation → database.
    this.proxySecurityGroup.addIngressRule(this.clientSecurityGroup, ec2.Port.tcp(PROXY_PORT), 'Route functions');
    this.clientSecurityGroup.addEgressRule(this.proxySecurityGroup, ec2.Port.tcp(PROXY_PORT), 'Postgres via RDS Proxy');
    this.proxySecurityGroup.addEgressRule(this.instanceSecurityGroup, ec2.Port.tcp(5432), 'Postgres instance');
    this.instanceSecurityGroup.addIngressRule(migrationSg, ec2.Port.tcp(5432), 'Migration function');
    migrationSg.addEgressRule(this.instanceSecurityGroup, ec2.Port.tcp(5432), 'Postgres instance');

    // Migrations, on every deploy whose db/migrations changed.
    const migrationsDir = props.migrationsDir ?? path.join(PROJECT_ROOT, 'db', 'migrations');
    this.migrationFunction = new TenantFunction(this, 'Migrate', {
      entry: 'functions/platform/migrate-on-deploy.ts',
      description: 'Deploy time: applies db/migrations as the master user',
      vpc,
      vpcSubnets: props.functionSubnets,
      securityGroups: [migrationSg],
      memoryMiB: 512,
      timeout: Duration.minutes(5),
      logRetention: props.logRetention,
      // The runtime's SDK provides Secrets Manager; everything else is bundled.
      externalModules: ['@aws-sdk/client-secrets-manager'],
      commandHooks: {
        beforeBundling: () => [],
        beforeInstall: () => [],
        // Portable copy (no `cp`): the SQL files next to the bundle, read by migrate() at run time.
        afterBundling: (_inputDir: string, outputDir: string) => [
          `node -e "require('fs').cpSync(process.argv[1], process.argv[2], { recursive: true })" "${migrationsDir}" "${path.join(outputDir, 'migrations')}"`,
        ],
      },
    });
    this.masterSecret.grantRead(this.migrationFunction);
    const provider = new cr.Provider(this, 'MigrationsProvider', {
      onEventHandler: this.migrationFunction,
      logGroup: this.migrationFunction.functionLogs,
    });
    this.migrations = new CustomResource(this, 'Migrations', {
      serviceToken: provider.serviceToken,
      resourceType: 'Custom::DatabaseMigrations',
      properties: {
        SecretArn: this.masterSecret.secretArn,
        Host: this.instance.dbInstanceEndpointAddress,
        Port: this.instance.dbInstanceEndpointPort,
        Database: DATABASE_NAME,
        MigrationsHash: migrationsHash(migrationsDir),
      },
    });
    acknowledgeCustomResourceFindings(this.migrationFunction, provider, 'applies db/migrations');
  }

  /** Lets a function log in through the proxy as `app_runtime`, and nobody else: rds-db:connect on that user. */
  grantRuntimeConnect(grantee: iam.IGrantable): iam.Grant {
    return this.proxy.grantConnect(grantee, RUNTIME_DB_USER);
  }

  /** Lets a platform function log in through the proxy as `app_control` (the control plane), and nobody else. */
  grantControlConnect(grantee: iam.IGrantable): iam.Grant {
    return this.proxy.grantConnect(grantee, CONTROL_DB_USER);
  }

  /** Lets the scheduled audit sealer log in through the proxy as `app_sealer`, and nobody else. */
  grantSealerConnect(grantee: iam.IGrantable): iam.Grant {
    return this.proxy.grantConnect(grantee, SEALER_DB_USER);
  }
}
