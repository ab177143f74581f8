/**
 * Configuration, parsed once per container from the environment into a typed object. This is the only
 * module that reads `process.env`; everything else receives what it needs from here. A value that is
 * present but malformed fails fast with a message naming the variable.
 */

export type SslMode = 'disable' | 'require' | 'verify-full';

export interface DatabaseConfig {
  /** A full connection URL (local stack, tests, `DATABASE_URL`). When set, host/port/user are ignored. */
  readonly url?: string;
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  /** Sign a short-lived RDS IAM token as the password of each new connection (RDS Proxy). */
  readonly iamAuth: boolean;
  readonly ssl: SslMode;
  /** Connections per container. A Lambda serves one request at a time, so 1–2 is right there. */
  readonly poolMax: number;
  /** Named prepared statements; kept configurable because RDS Proxy pinning must be measured. */
  readonly prepare: boolean;
  readonly connectTimeoutSeconds: number;
  /**
   * How long a request waits for a row lock (e.g. its tenant's hot usage-counter row) before it is
   * refused with 429: a tenant over its throughput ceiling fails fast instead of queueing.
   */
  readonly lockTimeoutMs: number;
  /**
   * The control-plane login (platform routes and the job runner; never tenant routes): its own URL
   * (local stack, tests) or its user on the same host/port/database (IAM authentication when deployed).
   */
  readonly control: { readonly url?: string; readonly user: string };
}

export interface AwsConfig {
  readonly region: string;
  /** An emulator (moto, LocalStack) endpoint; unset in AWS. */
  readonly endpoint?: string;
  /** The function's own credentials from the environment (Lambda sets them): sign RDS IAM tokens. */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string };
}

export interface StorageConfig {
  readonly bucket?: string;
  readonly tenantAccessRoleArn?: string;
  /** Lifetime of the scoped STS credentials (AssumeRole accepts 900–43200 s). */
  readonly credentialSeconds: number;
  /** Refresh cached credentials this long before they expire. */
  readonly refreshBeforeSeconds: number;
  /** Lifetime of presigned URLs (at most 900 s). */
  readonly presignSeconds: number;
}

export interface AuthConfig {
  readonly userPoolId?: string;
  readonly clientId?: string;
  /** Where to load the JWKS from when it is not Cognito's public endpoint (the local emulator). */
  readonly jwksUrl?: string;
  /**
   * Local stack only: users created by the API get this permanent password instead of a Cognito
   * invitation, so that `npm run token -- --email` signs them in. Never set in a deployment.
   */
  readonly localUserPassword?: string;
}

export interface PiiConfig {
  /** The KMS key that wraps each tenant's PII data key (encryption context {tenant_id}). */
  readonly kmsKeyId?: string;
  /** How long an unwrapped tenant data key stays in the container's memory. */
  readonly dataKeyCacheSeconds: number;
}

export interface CorsConfig {
  /** Browser origins (`scheme://host[:port]`) whose requests are answered with CORS headers; none by default. */
  readonly allowedOrigins: readonly string[];
}

/** The audit trail's anchoring outside the database (the scheduled sealer, functions/audit/anchor.ts). */
export interface AuditConfig {
  /** The object-locked bucket the sealer writes each tenant's chain head to; unset: no anchoring. */
  readonly anchorBucket?: string;
}

/** How long anything may take. */
export interface DeadlineConfig {
  /**
   * Every request is answered within this many milliseconds: past it the caller gets 503 with
   * `Retry-After` and the transaction cannot commit. Well under API Gateway's 29 s and under the
   * function's timeout (lib/), so the answer is ours and not a gateway timeout.
   */
  readonly requestMs: number;
}

export interface AppConfig {
  readonly environment: string;
  readonly deadlines: DeadlineConfig;
  readonly database: DatabaseConfig;
  readonly aws: AwsConfig;
  readonly storage: StorageConfig;
  readonly auth: AuthConfig;
  readonly pii: PiiConfig;
  readonly cors: CorsConfig;
  readonly audit: AuditConfig;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/**
 * The environment contract: every variable this module reads, by the setting it carries. The CDK
 * stack, the local stack and the benchmarks build their environment through {@link toEnvironment}
 * and name variables only through this map, so renaming one is a compile error, not a silent default.
 */
export const ENV = {
  environment: 'APP_ENV',
  requestDeadlineMs: 'REQUEST_DEADLINE_MS',
  databaseUrl: 'DATABASE_URL',
  databaseHost: 'DB_HOST',
  databasePort: 'DB_PORT',
  databaseName: 'DB_NAME',
  databaseUser: 'DB_USER',
  databaseIamAuth: 'DB_IAM_AUTH',
  databaseSsl: 'DB_SSL',
  databasePoolMax: 'DB_POOL_MAX',
  databasePrepare: 'DB_PREPARE',
  databaseConnectTimeoutSeconds: 'DB_CONNECT_TIMEOUT_SECONDS',
  databaseLockTimeoutMs: 'DB_LOCK_TIMEOUT_MS',
  /** The control-plane login (app_control) of platform routes and jobs. */
  controlDatabaseUrl: 'CONTROL_DATABASE_URL',
  controlDatabaseUser: 'CONTROL_DB_USER',
  awsRegion: 'AWS_REGION',
  /** Read only when AWS_REGION is unset; {@link toEnvironment} never writes it. */
  awsDefaultRegion: 'AWS_DEFAULT_REGION',
  awsEndpoint: 'AWS_ENDPOINT_URL',
  /** The function's own credentials: set by Lambda (never by the stack), by the local stack for the emulator. */
  awsAccessKeyId: 'AWS_ACCESS_KEY_ID',
  awsSecretAccessKey: 'AWS_SECRET_ACCESS_KEY',
  awsSessionToken: 'AWS_SESSION_TOKEN',
  /** Read only, by {@link environmentCredentials}: set where credentials expire (not by Lambda today). */
  awsCredentialExpiration: 'AWS_CREDENTIAL_EXPIRATION',
  tenantBucket: 'TENANT_BUCKET',
  tenantAccessRoleArn: 'TENANT_ACCESS_ROLE_ARN',
  tenantCredentialSeconds: 'TENANT_CREDENTIAL_SECONDS',
  tenantCredentialRefreshSeconds: 'TENANT_CREDENTIAL_REFRESH_SECONDS',
  presignSeconds: 'PRESIGN_SECONDS',
  storageReconcileAfterSeconds: 'STORAGE_RECONCILE_AFTER_SECONDS',
  jobQueueUrl: 'JOB_QUEUE_URL',
  userPoolId: 'USER_POOL_ID',
  userPoolClientId: 'USER_POOL_CLIENT_ID',
  jwksUrl: 'JWKS_URL',
  /** Local stack only: the password it gives every user it creates, so `npm run token -- --email` signs in. */
  localUserPassword: 'LOCAL_USER_PASSWORD',
  piiKmsKeyId: 'PII_KMS_KEY_ID',
  piiDataKeyCacheSeconds: 'PII_DATA_KEY_CACHE_SECONDS',
  corsOrigins: 'CORS_ORIGINS',
  auditAnchorBucket: 'AUDIT_ANCHOR_BUCKET',
  /**
   * Set by Lambda (never by the stack) where active tracing is on: the X-Ray daemon's address, `host:port`
   * or `udp:host:port tcp:host:port`; read by {@link xrayDaemonAddress}.
   */
  xrayDaemonAddress: 'AWS_XRAY_DAEMON_ADDRESS',
  /**
   * Set by Lambda before each invocation (never by the stack): the invocation's trace header,
   * `Root=…;Parent=…;Sampled=0|1`; read per invocation by {@link lambdaTraceHeader}.
   */
  lambdaTraceHeader: '_X_AMZN_TRACE_ID',
} as const;

/** The name of one variable of the contract. */
export type EnvName = (typeof ENV)[keyof typeof ENV];

function optional(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = optional(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

function boolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = optional(env, name);
  if (raw === undefined) return fallback;
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new ConfigError(`${name} must be true or false, got "${raw}"`);
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = optional(env, name);
  if (raw === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(`${name} must be one of ${allowed.join(', ')}, got "${raw}"`);
  }
  return raw as T;
}

function credentialsOf(env: Env): AwsConfig['credentials'] {
  const accessKeyId = optional(env, ENV.awsAccessKeyId);
  const secretAccessKey = optional(env, ENV.awsSecretAccessKey);
  if (accessKeyId === undefined || secretAccessKey === undefined) return undefined;
  return { accessKeyId, secretAccessKey, sessionToken: optional(env, ENV.awsSessionToken) };
}

const ORIGIN = /^https?:\/\/[a-z0-9.-]+(:[0-9]{1,5})?$/;

/**
 * A comma-separated list of exact browser origins. `*` and anything with a path are refused: a wildcard
 * would let any site read tenants' answers, and a browser never sends a path in `Origin`.
 */
function origins(env: Env, name: string): readonly string[] {
  const raw = optional(env, name);
  if (raw === undefined) return [];
  const list = raw.split(',').map((origin) => origin.trim().toLowerCase()).filter((origin) => origin !== '');
  for (const origin of list) {
    if (!ORIGIN.test(origin)) throw new ConfigError(`${name} must list origins like https://app.example.com, got "${origin}"`);
  }
  return [...new Set(list)];
}

/** Pure: parses an environment into configuration. */
export function parseConfig(env: Env): AppConfig {
  const presignSeconds = integer(env, ENV.presignSeconds, 900, 1, 900);
  return {
    environment: optional(env, ENV.environment) ?? 'local',
    deadlines: { requestMs: integer(env, ENV.requestDeadlineMs, 8000, 100, 25000) },
    database: {
      url: optional(env, ENV.databaseUrl),
      host: optional(env, ENV.databaseHost) ?? '127.0.0.1',
      port: integer(env, ENV.databasePort, 5432, 1, 65535),
      database: optional(env, ENV.databaseName) ?? 'app',
      user: optional(env, ENV.databaseUser) ?? 'app_runtime',
      iamAuth: boolean(env, ENV.databaseIamAuth, false),
      ssl: oneOf(env, ENV.databaseSsl, ['disable', 'require', 'verify-full'] as const, 'disable'),
      poolMax: integer(env, ENV.databasePoolMax, 2, 1, 100),
      prepare: boolean(env, ENV.databasePrepare, true),
      connectTimeoutSeconds: integer(env, ENV.databaseConnectTimeoutSeconds, 5, 1, 60),
      lockTimeoutMs: integer(env, ENV.databaseLockTimeoutMs, 2000, 1, 60000),
      control: {
        url: optional(env, ENV.controlDatabaseUrl),
        user: optional(env, ENV.controlDatabaseUser) ?? 'app_control',
      },
    },
    aws: {
      region: optional(env, ENV.awsRegion) ?? optional(env, ENV.awsDefaultRegion) ?? 'us-east-1',
      endpoint: optional(env, ENV.awsEndpoint),
      credentials: credentialsOf(env),
    },
    storage: {
      bucket: optional(env, ENV.tenantBucket),
      tenantAccessRoleArn: optional(env, ENV.tenantAccessRoleArn),
      credentialSeconds: integer(env, ENV.tenantCredentialSeconds, 3600, 900, 43200),
      refreshBeforeSeconds: integer(env, ENV.tenantCredentialRefreshSeconds, 300, 0, 3600),
      presignSeconds,
    },
    auth: {
      userPoolId: optional(env, ENV.userPoolId),
      clientId: optional(env, ENV.userPoolClientId),
      jwksUrl: optional(env, ENV.jwksUrl),
      localUserPassword: optional(env, ENV.localUserPassword),
    },
    pii: {
      kmsKeyId: optional(env, ENV.piiKmsKeyId),
      dataKeyCacheSeconds: integer(env, ENV.piiDataKeyCacheSeconds, 300, 0, 3600),
    },
    cors: { allowedOrigins: origins(env, ENV.corsOrigins) },
    audit: { anchorBucket: optional(env, ENV.auditAnchorBucket) },
  };
}

/** The defaults: what {@link parseConfig} gives for an empty environment. */
export function defaultConfig(): AppConfig {
  return parseConfig({});
}

export interface ToEnvironmentOptions {
  /**
   * Leave out AWS_REGION: Lambda sets it itself and refuses it as a reserved variable.
   * @default false
   */
  readonly regionFromRuntime?: boolean;
}

/**
 * The environment that {@link parseConfig} reads back as `config` (the inverse of parsing): every set
 * value as text, unset optional values left out. Values may be CDK tokens (strings that resolve at
 * deploy time); they pass through unchanged.
 */
export function toEnvironment(config: AppConfig, options: ToEnvironmentOptions = {}): Partial<Record<EnvName, string>> {
  const { database: db, aws, storage, auth, pii, cors, audit } = config;
  const entries: [EnvName, string | number | boolean | undefined][] = [
    [ENV.environment, config.environment],
    [ENV.requestDeadlineMs, config.deadlines.requestMs],
    [ENV.databaseUrl, db.url],
    [ENV.databaseHost, db.host],
    [ENV.databasePort, db.port],
    [ENV.databaseName, db.database],
    [ENV.databaseUser, db.user],
    [ENV.databaseIamAuth, db.iamAuth],
    [ENV.databaseSsl, db.ssl],
    [ENV.databasePoolMax, db.poolMax],
    [ENV.databasePrepare, db.prepare],
    [ENV.databaseConnectTimeoutSeconds, db.connectTimeoutSeconds],
    [ENV.databaseLockTimeoutMs, db.lockTimeoutMs],
    [ENV.controlDatabaseUrl, db.control.url],
    [ENV.controlDatabaseUser, db.control.user],
    [ENV.awsRegion, options.regionFromRuntime ? undefined : aws.region],
    [ENV.awsEndpoint, aws.endpoint],
    [ENV.awsAccessKeyId, aws.credentials?.accessKeyId],
    [ENV.awsSecretAccessKey, aws.credentials?.secretAccessKey],
    [ENV.awsSessionToken, aws.credentials?.sessionToken],
    [ENV.tenantBucket, storage.bucket],
    [ENV.tenantAccessRoleArn, storage.tenantAccessRoleArn],
    [ENV.tenantCredentialSeconds, storage.credentialSeconds],
    [ENV.tenantCredentialRefreshSeconds, storage.refreshBeforeSeconds],
    [ENV.presignSeconds, storage.presignSeconds],
    [ENV.userPoolId, auth.userPoolId],
    [ENV.userPoolClientId, auth.clientId],
    [ENV.jwksUrl, auth.jwksUrl],
    [ENV.localUserPassword, auth.localUserPassword],
    [ENV.piiKmsKeyId, pii.kmsKeyId],
    [ENV.piiDataKeyCacheSeconds, pii.dataKeyCacheSeconds],
    [ENV.corsOrigins, cors.allowedOrigins.length > 0 ? cors.allowedOrigins.join(',') : undefined],
    [ENV.auditAnchorBucket, audit.anchorBucket],
  ];
  const env: Partial<Record<EnvName, string>> = {};
  for (const [name, value] of entries) if (value !== undefined) env[name] = String(value);
  return env;
}

/**
 * What only the background work reads: the job queue (sent to by the two routes that create jobs) and
 * the storage reconciler's age. Parsed apart from {@link AppConfig} so that no other route bundle
 * carries the parsing (every route's bundle has a size budget); the same contract ({@link ENV}) names
 * the variables.
 */
export interface BackgroundConfig {
  /**
   * The SQS queue that deployed job runners consume; routes that create a job send its id there after
   * their commit. Unset locally, where the stack's in-process runner polls the job rows instead.
   */
  readonly jobQueueUrl?: string;
  /**
   * The storage reconciler removes a pending document whose upload never came once it is this old; at
   * least the longest URL lifetime (900 s), so that no URL issued for it can still store bytes.
   */
  readonly reconcileAfterSeconds: number;
}

/** Pure: parses an environment into the background settings. */
export function parseBackgroundConfig(env: Env): BackgroundConfig {
  return {
    jobQueueUrl: optional(env, ENV.jobQueueUrl),
    reconcileAfterSeconds: integer(env, ENV.storageReconcileAfterSeconds, 3600, 900, 2592000),
  };
}

/** The environment that {@link parseBackgroundConfig} reads back as `background`. */
export function backgroundEnvironment(background: BackgroundConfig): Partial<Record<EnvName, string>> {
  const env: Partial<Record<EnvName, string>> = { [ENV.storageReconcileAfterSeconds]: String(background.reconcileAfterSeconds) };
  if (background.jobQueueUrl !== undefined) env[ENV.jobQueueUrl] = background.jobQueueUrl;
  return env;
}

let cachedBackground: BackgroundConfig | undefined;

/** The container's background settings, parsed on first use. */
export function backgroundConfig(): BackgroundConfig {
  cachedBackground ??= parseBackgroundConfig(process.env);
  return cachedBackground;
}

let cached: AppConfig | undefined;

/** The container's configuration, parsed on first use. */
export function config(): AppConfig {
  cached ??= parseConfig(process.env);
  return cached;
}

/** Requires a setting that a module cannot work without; called at that module's cold start. */
export function required<T>(value: T | undefined, name: string): T {
  if (value === undefined) throw new ConfigError(`${name} is required but not set`);
  return value;
}

/**
 * The function's own credentials as the environment holds them now (the SDK's `fromEnv` link), with
 * their expiry when one is set; undefined without a key pair. Read at each call, not from the cached
 * configuration: the AWS clients' own memoisation decides when to ask again.
 */
export function environmentCredentials(
  env: Env = process.env,
): { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string; readonly expiration?: Date } | undefined {
  const credentials = credentialsOf(env);
  if (!credentials) return undefined;
  const expiry = optional(env, ENV.awsCredentialExpiration);
  return {
    accessKeyId: credentials.accessKeyId,
    secretAccessKey: credentials.secretAccessKey,
    ...(credentials.sessionToken !== undefined && { sessionToken: credentials.sessionToken }),
    ...(expiry !== undefined && { expiration: new Date(expiry) }),
  };
}

/**
 * Whether X-Ray tracing is on, decided as Powertools' tracer decides it (a Lambda execution environment,
 * not SAM local, `POWERTOOLS_TRACE_ENABLED` not false): only there does functions/core/xray.ts record
 * subsegments and send them to the daemon.
 */
export function tracingEnabled(env: Env = process.env): boolean {
  if ((env.POWERTOOLS_TRACE_ENABLED ?? '').toLowerCase() === 'false') return false;
  return Boolean(env.AWS_EXECUTION_ENV) && !env.AWS_SAM_LOCAL && env.AWS_EXECUTION_ENV !== 'AWS_Lambda_amplify-mock';
}

/**
 * The X-Ray daemon's address as Lambda gives it (`AWS_XRAY_DAEMON_ADDRESS`); undefined when unset, and
 * then the X-Ray SDK's default, 127.0.0.1:2000, applies (functions/core/xray.ts parses it).
 */
export function xrayDaemonAddress(env: Env = process.env): string | undefined {
  return optional(env, ENV.xrayDaemonAddress);
}

/** Where the Lambda runtime keeps per-invocation data when invocations run concurrently in one process. */
interface LambdaInvokeStore {
  getXRayTraceId?(): string | undefined;
}

/**
 * The trace header of the invocation being served, read afresh each time (Lambda sets it before each
 * invocation): the runtime's per-invocation store first (where one process serves invocations
 * concurrently, `AWS_LAMBDA_MAX_CONCURRENCY`, the variable is not the invocation's own), then
 * `_X_AMZN_TRACE_ID`. Undefined outside a traced invocation.
 */
export function lambdaTraceHeader(env: Env = process.env): string | undefined {
  const store = (globalThis as { awslambda?: { InvokeStore?: LambdaInvokeStore } }).awslambda?.InvokeStore;
  return store?.getXRayTraceId?.() ?? env[ENV.lambdaTraceHeader];
}

// ---------------------------------------------------------------------------------------------------
// What the logger and metrics read (functions/core/logger.ts, emf-metrics.ts): the variables Powertools'
// Logger and Metrics 2.36 read, read as Powertools' commons/utils/env reads them (values trimmed).

const TRUTHY = new Set(['1', 'y', 'yes', 't', 'true', 'on']);
const FALSY = new Set(['0', 'n', 'no', 'f', 'false', 'off']);

/** `POWERTOOLS_DEV` as Powertools' `isDevMode()`: 1, y, yes, t, true, on (any case); anything else is off. */
export function devMode(env: Env = process.env): boolean {
  return TRUTHY.has((optional(env, 'POWERTOOLS_DEV') ?? '').toLowerCase());
}

/** `TZ` as the logger's timestamp reads it, at each line; '' when unset. */
export function timeZone(env: Env = process.env): string {
  return optional(env, 'TZ') ?? '';
}

/** What a logger reads of the environment when it is built. */
export interface LoggerEnvironment {
  readonly devMode: boolean;
  /** `POWERTOOLS_SERVICE_NAME`; '' when unset. */
  readonly serviceName: string;
  /** `POWERTOOLS_LOG_LEVEL`, or when that is empty `LOG_LEVEL`, as written (a level only in capitals). */
  readonly logLevel: string;
  /** `AWS_LAMBDA_LOG_LEVEL`: Lambda's advanced logging controls, which win over any other level. */
  readonly lambdaLogLevel: string;
  /** `POWERTOOLS_LOGGER_SAMPLE_RATE` as a number (0 when unset); only 0 to 1 is a rate. */
  readonly sampleRate: number;
  /** `AWS_LAMBDA_INITIALIZATION_TYPE` is `on-demand`: only then is a first invocation a cold start. */
  readonly onDemand: boolean;
}

export function loggerEnvironment(env: Env = process.env): LoggerEnvironment {
  const rate = Number(optional(env, 'POWERTOOLS_LOGGER_SAMPLE_RATE') ?? '0');
  if (Number.isNaN(rate)) throw new ConfigError('Environment variable POWERTOOLS_LOGGER_SAMPLE_RATE must be a number');
  return {
    devMode: devMode(env),
    serviceName: optional(env, 'POWERTOOLS_SERVICE_NAME') ?? '',
    logLevel: optional(env, 'POWERTOOLS_LOG_LEVEL') ?? optional(env, 'LOG_LEVEL') ?? '',
    lambdaLogLevel: optional(env, 'AWS_LAMBDA_LOG_LEVEL') ?? '',
    sampleRate: rate,
    onDemand: env.AWS_LAMBDA_INITIALIZATION_TYPE?.trim() === 'on-demand',
  };
}

/** What a metrics publisher reads of the environment when it is built. */
export interface MetricsEnvironment {
  /** `POWERTOOLS_SERVICE_NAME`; '' when unset. */
  readonly serviceName: string;
  /** `POWERTOOLS_METRICS_NAMESPACE`; '' when unset. */
  readonly namespace: string;
  /** `POWERTOOLS_METRICS_DISABLED` where set (1/0, true/false, yes/no, on/off…), else whether `POWERTOOLS_DEV` is on. */
  readonly disabled: boolean;
  readonly devMode: boolean;
}

export function metricsEnvironment(env: Env = process.env): MetricsEnvironment {
  const dev = devMode(env);
  const raw = env.POWERTOOLS_METRICS_DISABLED;
  let disabled = dev;
  if (raw !== undefined) {
    const value = raw.trim().toLowerCase();
    if (!TRUTHY.has(value) && !FALSY.has(value)) throw new ConfigError('Environment variable POWERTOOLS_METRICS_DISABLED must be a boolean');
    disabled = TRUTHY.has(value);
  }
  return {
    serviceName: optional(env, 'POWERTOOLS_SERVICE_NAME') ?? '',
    namespace: optional(env, 'POWERTOOLS_METRICS_NAMESPACE') ?? '',
    disabled,
    devMode: dev,
  };
}
