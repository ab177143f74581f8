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
}

export interface AwsConfig {
  readonly region: string;
  /** An emulator (moto, LocalStack) endpoint; unset in AWS. */
  readonly endpoint?: string;
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

export interface AppConfig {
  readonly environment: string;
  readonly database: DatabaseConfig;
  readonly aws: AwsConfig;
  readonly storage: StorageConfig;
  readonly auth: AuthConfig;
  readonly pii: PiiConfig;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

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

/** Pure: parses an environment into configuration. */
export function parseConfig(env: Env): AppConfig {
  const presignSeconds = integer(env, 'PRESIGN_SECONDS', 900, 1, 900);
  return {
    environment: optional(env, 'APP_ENV') ?? 'local',
    database: {
      url: optional(env, 'DATABASE_URL'),
      host: optional(env, 'DB_HOST') ?? '127.0.0.1',
      port: integer(env, 'DB_PORT', 5432, 1, 65535),
      database: optional(env, 'DB_NAME') ?? 'app',
      user: optional(env, 'DB_USER') ?? 'app_runtime',
      iamAuth: boolean(env, 'DB_IAM_AUTH', false),
      ssl: oneOf(env, 'DB_SSL', ['disable', 'require', 'verify-full'] as const, 'disable'),
      poolMax: integer(env, 'DB_POOL_MAX', 2, 1, 100),
      prepare: boolean(env, 'DB_PREPARE', true),
      connectTimeoutSeconds: integer(env, 'DB_CONNECT_TIMEOUT_SECONDS', 5, 1, 60),
      lockTimeoutMs: integer(env, 'DB_LOCK_TIMEOUT_MS', 2000, 1, 60000),
    },
    aws: {
      region: optional(env, 'AWS_REGION') ?? optional(env, 'AWS_DEFAULT_REGION') ?? 'us-east-1',
      endpoint: optional(env, 'AWS_ENDPOINT_URL'),
    },
    storage: {
      bucket: optional(env, 'TENANT_BUCKET'),
      tenantAccessRoleArn: optional(env, 'TENANT_ACCESS_ROLE_ARN'),
      credentialSeconds: integer(env, 'TENANT_CREDENTIAL_SECONDS', 3600, 900, 43200),
      refreshBeforeSeconds: integer(env, 'TENANT_CREDENTIAL_REFRESH_SECONDS', 300, 0, 3600),
      presignSeconds,
    },
    auth: {
      userPoolId: optional(env, 'USER_POOL_ID'),
      clientId: optional(env, 'USER_POOL_CLIENT_ID'),
      jwksUrl: optional(env, 'JWKS_URL'),
      localUserPassword: optional(env, 'LOCAL_USER_PASSWORD'),
    },
    pii: {
      kmsKeyId: optional(env, 'PII_KMS_KEY_ID'),
      dataKeyCacheSeconds: integer(env, 'PII_DATA_KEY_CACHE_SECONDS', 300, 0, 3600),
    },
  };
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
