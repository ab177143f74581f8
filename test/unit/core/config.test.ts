import { ConfigError, ENV, backgroundEnvironment, environmentCredentials, defaultConfig, parseBackgroundConfig, parseConfig, required, toEnvironment, type AppConfig } from '../../../functions/core/config';

describe('parseConfig', () => {
  it('has secure, working defaults', () => {
    const config = parseConfig({});
    expect(config.database).toMatchObject({ user: 'app_runtime', iamAuth: false, prepare: true, poolMax: 2 });
    expect(config.storage.presignSeconds).toBe(900);
  });

  it('reads the deployed settings', () => {
    const config = parseConfig({
      DB_HOST: 'proxy.example',
      DB_IAM_AUTH: 'true',
      DB_SSL: 'verify-full',
      DB_POOL_MAX: '1',
      TENANT_BUCKET: 'b',
      USER_POOL_ID: 'us-east-1_abc',
    });
    expect(config.database).toMatchObject({ host: 'proxy.example', iamAuth: true, ssl: 'verify-full', poolMax: 1 });
    expect(config.storage.bucket).toBe('b');
    expect(config.auth.userPoolId).toBe('us-east-1_abc');
  });

  it.each([
    ['DB_PORT', 'abc'],
    ['DB_POOL_MAX', '0'],
    ['DB_IAM_AUTH', 'yes'],
    ['DB_SSL', 'prefer'],
    ['PRESIGN_SECONDS', '901'],
  ])('fails fast on a malformed %s, naming it', (name, value) => {
    expect(() => parseConfig({ [name]: value })).toThrow(new RegExp(name));
    expect(() => parseConfig({ [name]: value })).toThrow(ConfigError);
  });

  it('requires what a module cannot work without', () => {
    expect(() => required(undefined, 'USER_POOL_ID')).toThrow(/USER_POOL_ID is required/);
    expect(required('x', 'X')).toBe('x');
  });
});

describe('toEnvironment', () => {
  /** Every field differs from its default, so a field that toEnvironment forgot cannot round-trip. */
  const devLike: AppConfig = {
    environment: 'dev',
    deadlines: { requestMs: 7000 },
    database: {
      url: undefined,
      host: 'proxy.example.internal',
      port: 6432,
      database: 'tenants',
      user: 'app_runtime_dev',
      iamAuth: true,
      ssl: 'verify-full',
      poolMax: 1,
      prepare: false,
      connectTimeoutSeconds: 7,
      lockTimeoutMs: 1500,
      control: { url: undefined, user: 'app_control_dev' },
    },
    aws: {
      region: 'eu-central-1',
      endpoint: undefined,
      credentials: { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 'secret', sessionToken: 'session' },
    },
    storage: {
      bucket: 'dev-tenant-bucket',
      tenantAccessRoleArn: 'arn:aws:iam::123456789012:role/tenant-access',
      credentialSeconds: 1800,
      refreshBeforeSeconds: 120,
      presignSeconds: 600,
    },
    auth: { userPoolId: 'eu-central-1_abc', clientId: 'client123', jwksUrl: 'data:application/json;base64,e30' },
    pii: { kmsKeyId: 'arn:aws:kms:eu-central-1:123456789012:key/1', dataKeyCacheSeconds: 60 },
    cors: { allowedOrigins: ['https://app.example.com', 'http://localhost:5173'] },
    audit: { anchorBucket: 'dev-audit-anchors' },
  };
  const local: AppConfig = {
    ...defaultConfig(),
    database: { ...defaultConfig().database, url: 'postgres://app_runtime:secret@127.0.0.1:54321/app' },
    aws: { region: 'us-east-1', endpoint: 'http://127.0.0.1:5000' },
    storage: { ...defaultConfig().storage, bucket: 'local-bucket', tenantAccessRoleArn: 'arn:aws:iam::123456789012:role/local' },
    auth: { userPoolId: 'us-east-1_local', clientId: 'local-client', jwksUrl: 'http://127.0.0.1:5000/jwks.json' },
    pii: { kmsKeyId: 'alias/local-pii', dataKeyCacheSeconds: 300 },
  };

  it.each([
    ['a dev-like deployment with IAM auth', devLike],
    ['the local stack', local],
    ['the defaults', defaultConfig()],
  ])('round-trips %s through parseConfig', (_, config) => {
    expect(parseConfig(toEnvironment(config))).toEqual(config);
  });

  it('names only variables of the contract', () => {
    const names = new Set<string>(Object.values(ENV));
    expect(Object.keys(toEnvironment(devLike)).filter((name) => !names.has(name))).toEqual([]);
  });

  it('leaves AWS_REGION to the Lambda runtime when asked', () => {
    expect(toEnvironment(devLike)).toHaveProperty(ENV.awsRegion, 'eu-central-1');
    expect(toEnvironment(devLike, { regionFromRuntime: true })).not.toHaveProperty(ENV.awsRegion);
  });
});

describe('the background settings', () => {
  it('round-trip through the environment and default to an hour without a queue', () => {
    const deployed = { jobQueueUrl: 'https://sqs.eu-central-1.amazonaws.com/123456789012/dev-jobs', reconcileAfterSeconds: 7200 };
    expect(parseBackgroundConfig(backgroundEnvironment(deployed))).toEqual(deployed);
    expect(parseBackgroundConfig({})).toEqual({ jobQueueUrl: undefined, reconcileAfterSeconds: 3600 });
    const names = new Set<string>(Object.values(ENV));
    expect(Object.keys(backgroundEnvironment(deployed)).filter((name) => !names.has(name))).toEqual([]);
  });

  it('refuse a reconciler age shorter than an upload URL may live, naming the variable', () => {
    // The reconciler could otherwise remove a document whose upload is still coming.
    expect(() => parseBackgroundConfig({ STORAGE_RECONCILE_AFTER_SECONDS: '899' })).toThrow(/STORAGE_RECONCILE_AFTER_SECONDS/);
    expect(() => parseBackgroundConfig({ STORAGE_RECONCILE_AFTER_SECONDS: '899' })).toThrow(ConfigError);
  });
});

describe("the function's own credentials from the environment", () => {
  it('are the key pair with its session token and expiry when set, and nothing without a key pair', () => {
    const pair = { [ENV.awsAccessKeyId]: 'AKIDEXAMPLE', [ENV.awsSecretAccessKey]: 'secret' };
    expect(environmentCredentials(pair)).toEqual({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' });
    expect(
      environmentCredentials({ ...pair, [ENV.awsSessionToken]: 'token', [ENV.awsCredentialExpiration]: '2026-12-01T18:00:00Z' }),
    ).toEqual({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret', sessionToken: 'token', expiration: new Date('2026-12-01T18:00:00Z') });
    expect(environmentCredentials({ [ENV.awsAccessKeyId]: 'AKIDEXAMPLE' })).toBeUndefined();
    expect(environmentCredentials({ [ENV.awsSecretAccessKey]: 'secret', [ENV.awsAccessKeyId]: ' ' })).toBeUndefined();
  });
});
