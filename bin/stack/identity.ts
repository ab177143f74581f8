/**
 * Provisions in an AWS emulator what the CDK stack provisions for identity and PII: a Cognito user pool
 * whose users carry `custom:tenant_id` (immutable) and `custom:role`, an app client without a secret that
 * allows password sign-in, the seed users with permanent passwords, and the KMS key that wraps tenant
 * PII data keys. Every step is find-or-create by name, so several local stacks (the e2e test files) can
 * share one emulator and a persistent emulator (AWS_ENDPOINT_URL) can be reused across starts.
 */
import { createHash, randomInt } from 'node:crypto';
import {
  AdminCreateUserCommand,
  AdminGetUserCommand,
  AdminSetUserPasswordCommand,
  CognitoIdentityProviderClient,
  CreateUserPoolClientCommand,
  CreateUserPoolCommand,
  InitiateAuthCommand,
  ListUserPoolClientsCommand,
  ListUserPoolsCommand,
} from '@aws-sdk/client-cognito-identity-provider';
import { CreateAliasCommand, CreateKeyCommand, DescribeKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import type { Role } from '../../functions/core/tenant';

/**
 * What users may write about themselves, as the deployed app client allows (lib/constructs/identity.ts):
 * never the role, the tenant or the email. moto records the list but does not enforce it on
 * UpdateUserAttributes (nor attribute mutability); the API never trusts those claims for a decision.
 */
export const EMULATOR_WRITABLE_ATTRIBUTES: readonly string[] = ['name', 'locale', 'zoneinfo'];

/** How the emulator is reached. */
export interface EmulatorAccess {
  readonly endpoint: string;
  readonly region: string;
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
}

/** A user to exist in the pool. `tenantId` is absent for platform operators (`superadmin`). */
export interface IdentitySpec {
  readonly username: string;
  readonly email: string;
  readonly role: Role;
  readonly tenantId?: string;
}

export interface ProvisionedIdentity {
  readonly userPoolId: string;
  readonly clientId: string;
  /** The emulator's JWKS for the pool (Cognito's own URL is not reachable locally). */
  readonly jwksUrl: string;
  /** `sub` by username: the id the database must know the user by. */
  readonly subs: ReadonlyMap<string, string>;
}

function errorName(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null ? (error as { name?: string }).name : undefined;
}

/** The KMS key behind `alias`, created with the alias when absent. Returns the key id. */
export async function provisionPiiKey(access: EmulatorAccess, alias: string): Promise<string> {
  const kms = new KMSClient(access);
  try {
    try {
      const found = await kms.send(new DescribeKeyCommand({ KeyId: alias }));
      return found.KeyMetadata!.KeyId!;
    } catch (error) {
      if (errorName(error) !== 'NotFoundException') throw error;
    }
    const created = await kms.send(
      new CreateKeyCommand({ Description: 'Wraps tenant PII data keys (local stack)', KeyUsage: 'ENCRYPT_DECRYPT' }),
    );
    const keyId = created.KeyMetadata!.KeyId!;
    await kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: keyId }));
    return keyId;
  } finally {
    kms.destroy();
  }
}

/**
 * moto draws every id from one seedable generator (`POST /moto-api/seed`, documented under "Seeding
 * Moto"). Seeding it with a number derived from the username right before AdminCreateUser gives the user
 * the same `sub` in every fresh in-memory emulator, so ids stored in Postgres (documents.created_by,
 * audit actors) keep naming the same user across restarts. Best effort: the caller still reconciles the
 * database with whatever `sub` the emulator reports, and other emulators simply lack this endpoint.
 */
async function seedMotoRandom(endpoint: string, value: number): Promise<void> {
  await fetch(`${endpoint}/moto-api/seed?a=${value}`, { method: 'POST', signal: AbortSignal.timeout(3000) }).catch(
    () => undefined,
  );
}

function seedFor(poolName: string, username: string): number {
  return createHash('sha256').update(`${poolName}\u0000${username}`).digest().readUInt32BE(0);
}

/**
 * The user pool named `poolName`, its app client `${poolName}-client`, and `users` with `password`
 * (set again on every call, so the caller always knows it). `stableSubs` seeds moto's id generator
 * while creating users; use it only when nothing else talks to the emulator at the same time.
 */
export async function provisionIdentity(
  access: EmulatorAccess,
  options: { poolName: string; users: readonly IdentitySpec[]; password: string; stableSubs?: boolean },
): Promise<ProvisionedIdentity> {
  const cognito = new CognitoIdentityProviderClient(access);
  const clientName = `${options.poolName}-client`;
  try {
    const pools = await cognito.send(new ListUserPoolsCommand({ MaxResults: 60 }));
    let userPoolId = pools.UserPools?.find((p) => p.Name === options.poolName)?.Id;
    if (!userPoolId) {
      const created = await cognito.send(
        new CreateUserPoolCommand({
          PoolName: options.poolName,
          // As in CDK (signInAliases: email): the email is the username, so admin actions also take the `sub`.
          UsernameAttributes: ['email'],
          Schema: [
            // A user never moves to another tenant; a role may change.
            { Name: 'tenant_id', AttributeDataType: 'String', Mutable: false, StringAttributeConstraints: { MinLength: '3', MaxLength: '40' } },
            { Name: 'role', AttributeDataType: 'String', Mutable: true, StringAttributeConstraints: { MinLength: '1', MaxLength: '20' } },
          ],
          Policies: { PasswordPolicy: { MinimumLength: 12, RequireLowercase: true, RequireUppercase: true, RequireNumbers: true, RequireSymbols: false } },
          AdminCreateUserConfig: { AllowAdminCreateUserOnly: true },
        }),
      );
      userPoolId = created.UserPool!.Id!;
    }

    const clients = await cognito.send(new ListUserPoolClientsCommand({ UserPoolId: userPoolId, MaxResults: 60 }));
    let clientId = clients.UserPoolClients?.find((c) => c.ClientName === clientName)?.ClientId;
    if (!clientId) {
      const created = await cognito.send(
        new CreateUserPoolClientCommand({
          UserPoolId: userPoolId,
          ClientName: clientName,
          GenerateSecret: false,
          ExplicitAuthFlows: ['ALLOW_USER_PASSWORD_AUTH', 'ALLOW_ADMIN_USER_PASSWORD_AUTH', 'ALLOW_REFRESH_TOKEN_AUTH'],
          ReadAttributes: ['email', 'custom:tenant_id', 'custom:role'],
          WriteAttributes: [...EMULATOR_WRITABLE_ATTRIBUTES],
          AllowedOAuthFlowsUserPoolClient: false,
        }),
      );
      clientId = created.UserPoolClient!.ClientId!;
    }

    const subs = new Map<string, string>();
    let seeded = false;
    for (const user of options.users) {
      const sub = await existingSub(cognito, userPoolId, user.username);
      if (sub) {
        subs.set(user.username, sub);
      } else {
        if (options.stableSubs) {
          await seedMotoRandom(access.endpoint, seedFor(options.poolName, user.username));
          seeded = true;
        }
        const created = await cognito.send(
          new AdminCreateUserCommand({
            UserPoolId: userPoolId,
            Username: user.username,
            MessageAction: 'SUPPRESS',
            UserAttributes: [
              { Name: 'email', Value: user.email },
              { Name: 'email_verified', Value: 'true' },
              { Name: 'custom:role', Value: user.role },
              ...(user.tenantId ? [{ Name: 'custom:tenant_id', Value: user.tenantId }] : []),
            ],
          }),
        );
        subs.set(user.username, created.User!.Attributes!.find((a) => a.Name === 'sub')!.Value!);
      }
      await cognito.send(
        new AdminSetUserPasswordCommand({ UserPoolId: userPoolId, Username: user.username, Password: options.password, Permanent: true }),
      );
    }
    // Back to unpredictable ids for everything else the emulator hands out (STS keys, token ids).
    if (seeded) await seedMotoRandom(access.endpoint, randomInt(2 ** 31));

    return { userPoolId, clientId, jwksUrl: `${access.endpoint}/${userPoolId}/.well-known/jwks.json`, subs };
  } finally {
    cognito.destroy();
  }
}

async function existingSub(cognito: CognitoIdentityProviderClient, userPoolId: string, username: string): Promise<string | undefined> {
  try {
    const user = await cognito.send(new AdminGetUserCommand({ UserPoolId: userPoolId, Username: username }));
    return user.UserAttributes?.find((a) => a.Name === 'sub')?.Value;
  } catch (error) {
    if (errorName(error) === 'UserNotFoundException') return undefined;
    throw error;
  }
}

/** Signs a user in with USER_PASSWORD_AUTH and returns the ID token the emulator signed. */
export async function signIn(
  access: EmulatorAccess,
  params: { clientId: string; username: string; password: string },
): Promise<string> {
  const cognito = new CognitoIdentityProviderClient({ ...access, maxAttempts: 1 });
  try {
    const out = await cognito.send(
      new InitiateAuthCommand({
        ClientId: params.clientId,
        AuthFlow: 'USER_PASSWORD_AUTH',
        AuthParameters: { USERNAME: params.username, PASSWORD: params.password },
      }),
    );
    const token = out.AuthenticationResult?.IdToken;
    if (!token) throw new Error(`the emulator issued no ID token for ${params.username} (challenge ${out.ChallengeName ?? 'none'})`);
    return token;
  } finally {
    cognito.destroy();
  }
}

/** The user is not in the pool, or may not sign in (disabled): `npm run token -- --email` exits 2. */
export class UnknownUserError extends Error {
  constructor(email: string) {
    super(`No active user ${email} in the local pool.`);
    this.name = 'UnknownUserError';
  }
}

/**
 * An ID token for any active user of the local pool by email, signed in with the password the local
 * stack gives every user it creates (seed users and users created through the API alike).
 */
export async function signInByEmail(
  access: EmulatorAccess,
  params: { clientId: string; email: string; password: string },
): Promise<string> {
  try {
    return await signIn(access, { clientId: params.clientId, username: params.email.trim().toLowerCase(), password: params.password });
  } catch (error) {
    if (/UserNotFound|NotAuthorized|UserNotConfirmed|PasswordResetRequired/.test(errorName(error) ?? '')) {
      throw new UnknownUserError(params.email);
    }
    throw error;
  }
}
