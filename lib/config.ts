/**
 * Per-environment settings: one typed object per environment, read by `bin/app.ts` and handed to the
 * stage. Everything that differs between dev, staging and prod lives here and nowhere else; constructs
 * take these values as props and never branch on the environment's name.
 *
 * Account and region are not settings: they come from the CDK environment (`CDK_DEFAULT_ACCOUNT`,
 * `CDK_DEFAULT_REGION`, i.e. the credentials `cdk deploy` runs with). Without them the stacks synthesize
 * environment-agnostic, which is what the offline tests do.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';

export const ENVIRONMENT_NAMES = ['dev', 'staging', 'prod'] as const;
export type EnvironmentName = (typeof ENVIRONMENT_NAMES)[number];

/** The database of an environment: instance, storage, availability, backups and lifecycle. */
export interface DatabaseSettings {
  readonly instanceType: ec2.InstanceType;
  readonly allocatedStorageGiB: number;
  readonly maxAllocatedStorageGiB: number;
  readonly multiAz: boolean;
  readonly deletionProtection: boolean;
  readonly backupRetention: Duration;
  /** How often Secrets Manager rotates the master password. */
  readonly masterRotation: Duration;
  /** On stack deletion: DESTROY, SNAPSHOT (a final snapshot) or RETAIN. */
  readonly removalPolicy: RemovalPolicy;
}

export interface EnvironmentSettings {
  readonly name: EnvironmentName;
  /** The VPC's IPv4 range; distinct per environment so that they can be peered or routed later. */
  readonly vpcCidr: string;
  /** How many availability zones the VPC spans (subnets, endpoints, the database's standby). */
  readonly maxAzs: number;
  /** Database instance class and storage. */
  readonly database: DatabaseSettings;
  /** Lambda sizing, shared by every route function. */
  readonly functions: {
    readonly memoryMiB: number;
    readonly timeout: Duration;
    /** postgres.js connections per container: a Lambda serves one request at a time. */
    readonly dbPoolMax: number;
    /**
     * Concurrent executions reserved for (and capping) each route function: a flood on one route can
     * neither take the account's whole concurrency from the other routes nor open more database
     * connections than `reservedConcurrency × dbPoolMax` through it. Undefined: no reservation (dev:
     * new accounts start with a concurrency quota of 10, too small to reserve from).
     */
    readonly reservedConcurrency?: number;
  };
  /** API Gateway stage throttling (all methods). */
  readonly throttle: { readonly rateLimit: number; readonly burstLimit: number };
  /**
   * A WAF web ACL in front of the API: a per-IP rate-based rule, and a per-path one (requests per
   * minute to one URI path, i.e. one tenant's collection or resource: see lib/constructs/api.ts).
   */
  readonly waf: { readonly enabled: boolean; readonly requestsPer5MinPerIp: number; readonly requestsPerMinutePerPath: number };
  /**
   * Cognito: MFA, threat protection (advanced security, the Plus feature plan), and the hosted-UI
   * callback URLs; without any, the app client's OAuth flows are off (sign-in through the API only).
   */
  readonly identity: {
    readonly mfa: 'off' | 'optional' | 'required';
    readonly advancedSecurity: boolean;
    readonly oauthCallbackUrls?: readonly string[];
  };
  /** CloudWatch Logs retention of function, access, flow and proxy logs. */
  readonly logRetention: RetentionDays;
  /** What happens to the other stateful resources (bucket, user pool, keys, logs) on stack deletion. */
  readonly removalPolicy: RemovalPolicy;
  /** Alarm thresholds. */
  readonly alarms: { readonly p99LatencyMs: number; readonly serverErrorRatePercent: number };
  /** Days noncurrent object versions are kept in the tenant bucket. */
  readonly noncurrentVersionDays: number;
  /**
   * Browser origins allowed to call the API and to PUT/GET through presigned URLs (CORS; the functions'
   * `CORS_ORIGINS`). At most one per deployed environment: API Gateway's own answers (the authorizer's
   * 401, throttling's 429) can carry only a static `Access-Control-Allow-Origin` (lib/constructs/api.ts).
   * Staging and prod name none here (no browser origin is allowed: fail closed); the deployer names
   * theirs with `-c corsOrigin=<origin>` (see {@link withCorsOrigin}).
   */
  readonly corsOrigins: readonly string[];
  /**
   * Anchoring of the audit chain heads outside the database (lib/constructs/audit-anchor.ts): how often
   * the scheduled sealer chains new events and writes every tenant's head to the anchor bucket, and the
   * object lock of that bucket. COMPLIANCE: nobody, the account root included, can shorten or remove a
   * lock; GOVERNANCE: principals granted s3:BypassGovernanceRetention can (none in this stack), so a
   * test environment can still be cleaned up.
   */
  readonly auditAnchor: {
    readonly everyMinutes: number;
    readonly lockMode: 'COMPLIANCE' | 'GOVERNANCE';
    readonly retentionDays: number;
  };
}

const shared = {
  maxAzs: 2,
  functions: { memoryMiB: 1024, timeout: Duration.seconds(10), dbPoolMax: 1 },
  alarms: { p99LatencyMs: 2000, serverErrorRatePercent: 1 },
} as const;

export const environments: Readonly<Record<EnvironmentName, EnvironmentSettings>> = {
  dev: {
    ...shared,
    name: 'dev',
    vpcCidr: '10.10.0.0/16',
    database: {
      instanceType: ec2.InstanceType.of(ec2.InstanceClass.T4G, ec2.InstanceSize.MICRO),
      allocatedStorageGiB: 20,
      maxAllocatedStorageGiB: 50,
      multiAz: false,
      deletionProtection: false,
      backupRetention: Duration.days(1),
      masterRotation: Duration.days(30),
      removalPolicy: RemovalPolicy.DESTROY,
    },
    throttle: { rateLimit: 50, burstLimit: 100 },
    waf: { enabled: false, requestsPer5MinPerIp: 2000, requestsPerMinutePerPath: 600 },
    identity: { mfa: 'optional', advancedSecurity: false },
    logRetention: RetentionDays.ONE_WEEK,
    removalPolicy: RemovalPolicy.DESTROY,
    noncurrentVersionDays: 7,
    // A front-end developer's Vite dev server against the dev API.
    corsOrigins: ['http://localhost:5173'],
    auditAnchor: { everyMinutes: 5, lockMode: 'GOVERNANCE', retentionDays: 1 },
  },
  staging: {
    ...shared,
    name: 'staging',
    vpcCidr: '10.20.0.0/16',
    database: {
      instanceType: ec2.InstanceType.of(ec2.InstanceClass.T4G, ec2.InstanceSize.SMALL),
      allocatedStorageGiB: 20,
      maxAllocatedStorageGiB: 100,
      multiAz: false,
      deletionProtection: false,
      backupRetention: Duration.days(7),
      masterRotation: Duration.days(30),
      removalPolicy: RemovalPolicy.SNAPSHOT,
    },
    functions: { ...shared.functions, reservedConcurrency: 10 },
    throttle: { rateLimit: 200, burstLimit: 400 },
    // 100 requests/s to one path: the pro plan's per-tenant rate.
    waf: { enabled: true, requestsPer5MinPerIp: 2000, requestsPerMinutePerPath: 6000 },
    identity: { mfa: 'optional', advancedSecurity: true },
    logRetention: RetentionDays.ONE_MONTH,
    removalPolicy: RemovalPolicy.DESTROY,
    noncurrentVersionDays: 30,
    // The deployer's own front end, given at deploy time: `-c corsOrigin=https://app.staging.example.com`.
    corsOrigins: [],
    auditAnchor: { everyMinutes: 5, lockMode: 'GOVERNANCE', retentionDays: 30 },
  },
  prod: {
    ...shared,
    name: 'prod',
    vpcCidr: '10.30.0.0/16',
    maxAzs: 2,
    database: {
      instanceType: ec2.InstanceType.of(ec2.InstanceClass.M7G, ec2.InstanceSize.LARGE),
      allocatedStorageGiB: 100,
      maxAllocatedStorageGiB: 500,
      multiAz: true,
      deletionProtection: true,
      backupRetention: Duration.days(30),
      masterRotation: Duration.days(30),
      removalPolicy: RemovalPolicy.SNAPSHOT,
    },
    functions: { ...shared.functions, dbPoolMax: 2, reservedConcurrency: 50 },
    throttle: { rateLimit: 1000, burstLimit: 2000 },
    // 1,000 requests/s to one path: the enterprise plan's per-tenant rate (WAF cannot tell plans apart;
    // each plan's own rate is enforced exactly in SQL).
    waf: { enabled: true, requestsPer5MinPerIp: 2000, requestsPerMinutePerPath: 60000 },
    identity: { mfa: 'required', advancedSecurity: true },
    logRetention: RetentionDays.ONE_YEAR,
    removalPolicy: RemovalPolicy.RETAIN,
    noncurrentVersionDays: 90,
    // The deployer's own front end, given at deploy time: `-c corsOrigin=https://app.example.com`.
    corsOrigins: [],
    // Audit evidence outlives the database's backups: seven years, locked for everyone.
    auditAnchor: { everyMinutes: 5, lockMode: 'COMPLIANCE', retentionDays: 2557 },
  },
};

export function isEnvironmentName(value: unknown): value is EnvironmentName {
  return typeof value === 'string' && (ENVIRONMENT_NAMES as readonly string[]).includes(value);
}

/**
 * `settings` with the browser origin given at deploy time (`-c corsOrigin=https://app.example.com`) in
 * place of the environment's default; none given keeps the default. An origin that is not a bare
 * `scheme://host[:port]` is refused with a clear error rather than deployed.
 */
export function withCorsOrigin(settings: EnvironmentSettings, origin: unknown): EnvironmentSettings {
  if (origin === undefined) return settings;
  if (typeof origin !== 'string' || !/^https?:\/\/[a-z0-9.-]+(:\d{1,5})?$/i.test(origin)) {
    throw new Error(`-c corsOrigin must be one origin such as https://app.example.com (scheme, host, optional port; no path), got ${JSON.stringify(origin)}`);
  }
  return { ...settings, corsOrigins: [origin.toLowerCase()] };
}

/** The settings of one environment; a clear error names the valid choices. */
export function settingsFor(name: unknown): EnvironmentSettings {
  if (!isEnvironmentName(name)) {
    throw new Error(`Unknown environment ${JSON.stringify(name)}: pass -c env=<${ENVIRONMENT_NAMES.join('|')}>`);
  }
  return environments[name];
}
