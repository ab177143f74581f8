/**
 * PII (a member's email and name) is stored only as ciphertext: AES-256-GCM under a per-tenant data key
 * that KMS wraps with the encryption context `{ tenant_id }`, so a wrapped key copied to another tenant
 * cannot be unwrapped. Lookups use a keyed blind index (HMAC-SHA-256 under a key derived from the data
 * key), never the plaintext. Offboarding destroys the wrapped key, and with it every copy of the PII.
 *
 * Ciphertext layout: version (1 byte) | IV (12) | tag (16) | ciphertext. The AAD binds each value to its
 * tenant and field, so a ciphertext moved to another row or field does not decrypt.
 */
import { AWS_MAX_ATTEMPTS, AWS_REQUEST_HANDLER } from './aws-timeouts';
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { AwsJsonClient, type AwsServiceOptions } from './aws-json';
import { config, required } from './config';
import { ServiceUnavailableError } from './errors';
import { assertTenantId } from './tenant';
import { captureClient } from './observability';

/** What a ciphertext holds; `answer`: a stored create answer that carries PII (core/idempotency.ts). */
export type PiiField = 'email' | 'name' | 'answer';

export interface TenantKeys {
  encrypt(field: PiiField, plaintext: string): Buffer;
  decrypt(field: PiiField, ciphertext: Buffer): string;
  /** Deterministic, keyed: equal inputs (after normalisation) give equal indexes within one tenant. */
  blindIndex(field: PiiField, value: string): Buffer;
}

export interface Pii {
  /** A new data key for a tenant: store `wrapped` in tenants.data_key_ciphertext. */
  newTenantKey(tenantId: string): Promise<{ wrapped: Buffer; keys: TenantKeys }>;
  /** Unwraps (cached per container) and returns the tenant's keys. */
  tenantKeys(tenantId: string, wrapped: Buffer): Promise<TenantKeys>;
  /** Drops the container's unwrapped copy of a tenant's key (crypto-shredding at offboarding). */
  forgetTenantKey(tenantId: string): void;
}

/** One tenant's PII keys, as a route receives them (`ctx.pii`): bound to the request's tenant. */
export interface TenantPii {
  /** Unwraps (cached per container) the tenant's data key `wrapped` (tenants.data_key_ciphertext). */
  keys(wrapped: Buffer): Promise<TenantKeys>;
}

/** Binds `pii` to one tenant: the route cannot ask for another tenant's keys. */
export function forTenant(pii: Pii, tenantId: string): TenantPii {
  assertTenantId(tenantId);
  return { keys: (wrapped) => pii.tenantKeys(tenantId, wrapped) };
}

const VERSION = 1;

function normalise(field: PiiField, value: string): string {
  return field === 'email' ? value.trim().toLowerCase() : value.trim();
}

export function keysFrom(tenantId: string, dataKey: Buffer): TenantKeys {
  const indexKey = Buffer.from(hkdfSync('sha256', dataKey, Buffer.alloc(0), 'blind-index-v1', 32));
  const aad = (field: PiiField) => Buffer.from(`${tenantId}\u0000${field}`, 'utf8');
  return {
    encrypt(field, plaintext) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', dataKey, iv);
      cipher.setAAD(aad(field));
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return Buffer.concat([Buffer.from([VERSION]), iv, cipher.getAuthTag(), body]);
    },
    decrypt(field, ciphertext) {
      if (ciphertext.length < 29 || ciphertext[0] !== VERSION) throw new Error('unknown ciphertext format');
      const decipher = createDecipheriv('aes-256-gcm', dataKey, ciphertext.subarray(1, 13));
      decipher.setAAD(aad(field));
      decipher.setAuthTag(ciphertext.subarray(13, 29));
      return Buffer.concat([decipher.update(ciphertext.subarray(29)), decipher.final()]).toString('utf8');
    },
    blindIndex(field, value) {
      return createHmac('sha256', indexKey).update(`${field}\u0000${normalise(field, value)}`).digest();
    },
  };
}

/**
 * A KMS client for the two calls PII makes (GenerateDataKey, Decrypt): the small JSON-protocol client
 * (aws-json.ts) with the SDK client's name, endpoint, signing name and target, and this project's
 * timeouts and retries (aws-timeouts.ts).
 */
export function kmsClient(options: AwsServiceOptions): AwsJsonClient {
  return new AwsJsonClient({
    clientName: 'KMSClient',
    signingName: 'kms',
    targetPrefix: 'TrentService',
    jsonVersion: '1.1',
    requestHandler: AWS_REQUEST_HANDLER,
    maxAttempts: AWS_MAX_ATTEMPTS,
    ...options,
  });
}

/** KMS's JSON answers carry blobs as base64. */
const blob = (value: unknown): Buffer | undefined => (typeof value === 'string' ? Buffer.from(value, 'base64') : undefined);

export function createPii(options: { kms: AwsJsonClient; keyId: string; cacheSeconds: number; now?: () => number }): Pii {
  const now = options.now ?? Date.now;
  const cache = new Map<string, { wrapped: string; keys: TenantKeys; until: number }>();
  const context = (tenantId: string) => ({ tenant_id: tenantId });

  async function kms<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      const name = (error as { name?: string }).name ?? '';
      if (/AccessDenied|InvalidCiphertext|IncorrectKey/.test(name)) throw error;
      throw new ServiceUnavailableError('The key service is not reachable; try again shortly.', { cause: error });
    }
  }

  return {
    async newTenantKey(tenantId) {
      assertTenantId(tenantId);
      // Members in the order of KMS's model, as the SDK writes them.
      const out = await kms(() =>
        options.kms.call('GenerateDataKey', { KeyId: options.keyId, EncryptionContext: context(tenantId), KeySpec: 'AES_256' }),
      );
      const plaintext = blob(out.Plaintext);
      const wrapped = blob(out.CiphertextBlob);
      if (!plaintext || !wrapped) throw new Error('KMS returned no data key');
      return { wrapped, keys: keysFrom(tenantId, plaintext) };
    },
    async tenantKeys(tenantId, wrapped) {
      assertTenantId(tenantId);
      const id = wrapped.toString('base64');
      const hit = cache.get(tenantId);
      if (hit && hit.wrapped === id && hit.until > now()) return hit.keys;
      const out = await kms(() =>
        options.kms.call('Decrypt', { CiphertextBlob: id, EncryptionContext: context(tenantId), KeyId: options.keyId }),
      );
      const plaintext = blob(out.Plaintext);
      if (!plaintext) throw new Error('KMS returned no plaintext');
      const keys = keysFrom(tenantId, plaintext);
      cache.set(tenantId, { wrapped: id, keys, until: now() + options.cacheSeconds * 1000 });
      return keys;
    },
    forgetTenantKey(tenantId) {
      cache.delete(tenantId);
    },
  };
}

let containerPii: Pii | undefined;

export function pii(): Pii {
  if (!containerPii) {
    const { aws, pii: settings } = config();
    containerPii = createPii({
      kms: captureClient(kmsClient({ region: aws.region, endpoint: aws.endpoint })),
      keyId: required(settings.kmsKeyId, 'PII_KMS_KEY_ID'),
      cacheSeconds: settings.dataKeyCacheSeconds,
    });
  }
  return containerPii;
}
