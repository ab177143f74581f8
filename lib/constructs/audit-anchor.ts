/**
 * Anchoring of the audit hash chains outside the database. The chain (migration 0008) makes an edit,
 * a deletion or a reorder of audit events detectable, but someone with owner access to the database
 * could recompute every later link; what they cannot rewrite is a head already written elsewhere:
 *
 *  - an S3 bucket with object lock (default retention per environment, COMPLIANCE in prod): an anchor
 *    object can be neither overwritten (every write is a new version) nor deleted before its retention
 *    ends, whatever the database holds;
 *  - a function run by an EventBridge schedule (functions/audit/anchor.ts) that seals the committed events
 *    as `app_sealer` and writes every tenant's head (tenant id, sequence number, event id, hash, sealing
 *    time; no PII) as one new object per run under `audit-heads/`.
 *
 * Least privilege: the function may connect as `app_sealer` only and may only `s3:PutObject` under
 * `audit-heads/`: no read, no delete, no retention or legal-hold change, no governance bypass. Nothing
 * else in the stack is granted anything on the bucket.
 */
import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { ENV } from '../../functions/core/config';
import type { EnvironmentSettings } from '../config';
import type { Database } from './database';
import { TenantFunction } from './tenant-function';

/** The key prefix of the anchor objects; the function may write nowhere else. */
export const ANCHOR_PREFIX = 'audit-heads/';

export interface AuditAnchorProps extends Pick<EnvironmentSettings, 'auditAnchor'> {
  readonly vpc: ec2.IVpc;
  readonly vpcSubnets: ec2.SubnetSelection;
  readonly database: Database;
  /** The sealer's runtime configuration (DB_USER app_sealer); the bucket's name is added here. */
  readonly environment: Record<string, string>;
  readonly logRetention: logs.RetentionDays;
  /** Where the bucket's server access logs go. */
  readonly accessLogBucket: s3.IBucket;
}

export class AuditAnchor extends Construct {
  public readonly bucket: s3.Bucket;
  public readonly sealer: TenantFunction;
  public readonly schedule: events.Rule;

  constructor(scope: Construct, id: string, props: AuditAnchorProps) {
    super(scope, id);
    const { lockMode, retentionDays, everyMinutes } = props.auditAnchor;
    const retention = Duration.days(retentionDays);

    this.bucket = new s3.Bucket(this, 'Bucket', {
      objectLockEnabled: true,
      objectLockDefaultRetention:
        lockMode === 'COMPLIANCE' ? s3.ObjectLockRetention.compliance(retention) : s3.ObjectLockRetention.governance(retention),
      // Object lock keeps versions: a second write of a key is a new version, the locked one stays.
      versioned: true,
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: props.accessLogBucket,
      serverAccessLogsPrefix: 'audit-anchors/',
      // Locked objects cannot be deleted before their retention ends; neither can their bucket.
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.sealer = new TenantFunction(this, 'Sealer', {
      entry: 'functions/audit/anchor.ts',
      description: 'Scheduled: seals the audit chains and anchors their heads in the object-locked bucket',
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets,
      securityGroups: [props.database.clientSecurityGroup],
      memoryMiB: 512,
      timeout: Duration.minutes(1),
      logRetention: props.logRetention,
      environment: { ...props.environment, [ENV.auditAnchorBucket]: this.bucket.bucketName },
    });
    props.database.grantSealerConnect(this.sealer);
    this.sealer.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['s3:PutObject'], resources: [this.bucket.arnForObjects(`${ANCHOR_PREFIX}*`)] }),
    );
    Validations.of(this.sealer).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${Stack.of(this).getLogicalId(this.bucket.node.defaultChild as s3.CfnBucket)}.Arn>/${ANCHOR_PREFIX}*]`,
      reason: 'One new anchor object per run, named by its time: PutObject under audit-heads/ only.',
    });

    this.schedule = new events.Rule(this, 'Schedule', {
      description: `Seals the audit chains and anchors their heads every ${everyMinutes} minutes`,
      schedule: events.Schedule.rate(Duration.minutes(everyMinutes)),
      targets: [new targets.LambdaFunction(this.sealer, { retryAttempts: 2, maxEventAge: Duration.minutes(everyMinutes) })],
    });

    // A run that fails leaves the heads unanchored until the next one succeeds: alarmed at once.
    new cloudwatch.Alarm(this, 'SealerErrors', {
      alarmDescription: 'the audit sealer failed: chain heads are not being anchored',
      metric: this.sealer.metricErrors({ period: Duration.minutes(15), statistic: 'Sum' }),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }
}
