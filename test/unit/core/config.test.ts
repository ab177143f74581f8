import { ConfigError, parseConfig, required } from '../../../functions/core/config';

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
