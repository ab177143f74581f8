/**
 * The SDK clients' default credential provider for the Lambda bundles: the environment only. esbuild
 * puts this module in place of `@aws-sdk/credential-provider-node` when it bundles a function (see
 * `lib/constructs/lambda-bundling.ts`); nothing imports it by name. No function uses an SDK client today:
 * KMS, Cognito, SQS, S3 and STS are called through the small clients on `aws-client.ts`, which take the
 * same credentials from `environmentCredentials()` of config.ts; this stays for any SDK client a bundle
 * may carry. In Lambda the function's credentials are always in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), where the
 * default chain's first link finds them, so the other links (SSO, ini files, processes, web identity,
 * instance metadata) never run there; they cost ~250 KiB of every S3 bundle and its import time.
 * Tenant credentials are passed to their S3 clients explicitly and never come from here.
 */
import { fromEnv } from '@aws-sdk/credential-provider-env';

type Init = Parameters<typeof fromEnv>[0];

/** Same name and shape as `@aws-sdk/credential-provider-node`'s: the clients call it with their logger. */
export const defaultProvider = (init: Init = {}): ReturnType<typeof fromEnv> => fromEnv(init);

/** The two helpers `@aws-sdk/credential-provider-node` exports besides, with its semantics. */
export const credentialsWillNeedRefresh = (credentials?: { expiration?: Date }): boolean => credentials?.expiration !== undefined;
export const credentialsTreatedAsExpired = (credentials?: { expiration?: Date }): boolean =>
  credentials?.expiration !== undefined && credentials.expiration.getTime() - Date.now() < 300_000;
