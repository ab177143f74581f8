/**
 * Per-tenant PII data keys against the emulator's KMS: wrapped with the tenant as encryption context,
 * unwrapped once per container, and useless to any other tenant.
 */
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import type { AwsJsonClient } from '../../functions/core/aws-json';
import { createPii, kmsClient } from '../../functions/core/pii';
import { ServiceUnavailableError } from '../../functions/core/errors';

describe('tenant PII keys with KMS', () => {
  const endpoint = process.env.TEST_AWS_ENDPOINT_URL!;
  let kms: AwsJsonClient;
  let keyId: string;
  let decrypts = 0;

  beforeAll(async () => {
    kms = kmsClient({ region: 'us-east-1', endpoint });
    kms.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'DecryptCommand') decrypts++;
        return next(args);
      },
      { step: 'initialize', name: 'countDecrypts' },
    );
    // The key is made with the SDK's client; the PII code calls KMS with its own (aws-json.ts).
    const sdk = new KMSClient({ region: 'us-east-1', endpoint });
    const key = await sdk.send(new CreateKeyCommand({ Description: 'pii test key' }));
    sdk.destroy();
    keyId = key.KeyMetadata!.KeyId!;
  });

  it('wraps a new tenant key and unwraps it for the same tenant, once per container', async () => {
    const pii = createPii({ kms, keyId, cacheSeconds: 300 });
    const { wrapped, keys } = await pii.newTenantKey('acme');
    const ciphertext = keys.encrypt('email', 'org_admin@acme.example');
    decrypts = 0;
    const unwrapped = await pii.tenantKeys('acme', wrapped);
    expect(unwrapped.decrypt('email', ciphertext)).toBe('org_admin@acme.example');
    await pii.tenantKeys('acme', wrapped);
    expect(decrypts).toBe(1);
  });

  it('refuses to unwrap one tenant\'s key for another tenant', async () => {
    const pii = createPii({ kms, keyId, cacheSeconds: 300 });
    const { wrapped } = await pii.newTenantKey('acme');
    // Positive control: the owner unwraps it.
    await expect(pii.tenantKeys('acme', wrapped)).resolves.toBeDefined();
    await expect(pii.tenantKeys('globex', wrapped)).rejects.toThrow();
  });

  it('refuses a tenant id that breaks the slug rule before calling KMS', async () => {
    const pii = createPii({ kms, keyId, cacheSeconds: 300 });
    decrypts = 0;
    await expect(pii.tenantKeys('ACME', Buffer.from('x'))).rejects.toMatchObject({ status: 400 });
    expect(decrypts).toBe(0);
  });

  it('answers service unavailable when KMS cannot be reached', async () => {
    const down = kmsClient({ region: 'us-east-1', endpoint: 'http://127.0.0.1:1', maxAttempts: 1 });
    const pii = createPii({ kms: down, keyId, cacheSeconds: 300 });
    await expect(pii.newTenantKey('acme')).rejects.toBeInstanceOf(ServiceUnavailableError);
  });
});
