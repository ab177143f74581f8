/**
 * The user directory: Cognito users of the pool, addressed by their `sub` (the member's user id). The
 * pool signs users in by email (email is the username attribute), so Cognito's admin actions accept the
 * `sub` as the username, and one email is one user in the whole pool: a person belongs to one tenant
 * (`custom:tenant_id` is immutable).
 *
 * Deployed, AdminCreateUser lets Cognito send the invitation with a temporary password. The local stack
 * sets `localPassword` instead: the invitation is suppressed and the user gets that permanent password,
 * so `npm run token -- --email` can sign them in at once.
 */
import { AWS_REQUEST_HANDLER, COGNITO_MAX_ATTEMPTS } from './aws-timeouts';
import { AwsJsonClient, type AwsServiceOptions } from './aws-json';
import { config, required } from './config';
import { AppError, ConflictError, ServiceUnavailableError } from './errors';
import { isUnavailableError } from './aws-errors';
import type { TenantRole } from './tenant';
import { captureClient } from './observability';

export interface NewUser {
  readonly email: string;
  readonly name?: string;
  readonly tenantId: string;
  readonly role: TenantRole;
}

/** The Cognito side of members. Every method is idempotent, so a retried request completes. */
export interface UserDirectory {
  /**
   * Creates the user, or finds the one this tenant already created for that email (a retry).
   * An email that is a user of another tenant, or a platform operator, is a {@link ConflictError}.
   */
  createUser(user: NewUser): Promise<{ userId: string }>;
  /**
   * Whether {@link createUser} would accept `email` for `tenantId`: no user has it, or this tenant's own
   * does (a retry). Asked before anything is made, so that a refusal changes nothing.
   */
  isAvailable(email: string, tenantId: string): Promise<boolean>;
  /** Sets `custom:role`; the member's next token carries it (the database row already counts). */
  setRole(userId: string, role: TenantRole): Promise<void>;
  /** Refuses new sign-ins; an existing token is refused by the request guard at its next request. */
  disable(userId: string): Promise<void>;
  enable(userId: string): Promise<void>;
  /** Deletes the user; a user that is already gone is fine. Answers whether one was deleted. */
  deleteUser(userId: string): Promise<boolean>;
}

/** A user attribute as Cognito's JSON has it. */
interface Attribute {
  readonly Name?: string;
  readonly Value?: string;
}

/**
 * A Cognito user-pool client for the admin calls of the user directory: the small JSON-protocol client
 * (aws-json.ts) with the SDK client's name, endpoint, signing name and target, this project's timeouts
 * and no SDK retry (aws-timeouts.ts: COGNITO_MAX_ATTEMPTS).
 */
export function cognitoClient(options: AwsServiceOptions): AwsJsonClient {
  return new AwsJsonClient({
    clientName: 'CognitoIdentityProviderClient',
    signingName: 'cognito-idp',
    targetPrefix: 'AWSCognitoIdentityProviderService',
    jsonVersion: '1.1',
    requestHandler: AWS_REQUEST_HANDLER,
    maxAttempts: COGNITO_MAX_ATTEMPTS,
    ...options,
  });
}

function errorName(error: unknown): string {
  return (error as { name?: string } | null)?.name ?? '';
}

async function guarded<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof AppError) throw error;
    if (isUnavailableError(error) || errorName(error) === 'TooManyRequestsException') {
      throw new ServiceUnavailableError('The identity service is not reachable; try again shortly.', { cause: error });
    }
    throw error;
  }
}

export function createUserDirectory(options: {
  readonly cognito: AwsJsonClient;
  readonly userPoolId: string;
  /** Local stack only: the permanent password every created user gets, instead of an invitation. */
  readonly localPassword?: string;
}): UserDirectory {
  const { cognito, userPoolId, localPassword } = options;

  async function attributesOf(username: string): Promise<Record<string, string> | undefined> {
    try {
      const user = await cognito.call<{ UserAttributes?: Attribute[] }>('AdminGetUser', { UserPoolId: userPoolId, Username: username });
      return Object.fromEntries((user.UserAttributes ?? []).map((a) => [a.Name ?? '', a.Value ?? '']));
    } catch (error) {
      if (errorName(error) === 'UserNotFoundException') return undefined;
      throw error;
    }
  }

  async function setPassword(username: string): Promise<void> {
    if (localPassword === undefined) return;
    await cognito.call('AdminSetUserPassword', { UserPoolId: userPoolId, Username: username, Password: localPassword, Permanent: true });
  }

  return {
    isAvailable: (email, tenantId) =>
      guarded(async () => {
        const existing = await attributesOf(email.trim().toLowerCase());
        return !existing || existing['custom:tenant_id'] === tenantId;
      }),
    createUser: (user) =>
      guarded(async () => {
        const email = user.email.trim().toLowerCase();
        let sub: string | undefined;
        try {
          // Members in the order of Cognito's model, as the SDK writes them.
          const created = await cognito.call<{ User?: { Attributes?: Attribute[] } }>('AdminCreateUser', {
            UserPoolId: userPoolId,
            Username: email,
            UserAttributes: [
              { Name: 'email', Value: email },
              { Name: 'email_verified', Value: 'true' },
              { Name: 'custom:tenant_id', Value: user.tenantId },
              { Name: 'custom:role', Value: user.role },
              ...(user.name ? [{ Name: 'name', Value: user.name }] : []),
            ],
            // Deployed: Cognito sends the invitation. Locally: no message, a known password below.
            MessageAction: localPassword === undefined ? undefined : 'SUPPRESS',
            DesiredDeliveryMediums: localPassword === undefined ? ['EMAIL'] : undefined,
          });
          sub = created.User?.Attributes?.find((a) => a.Name === 'sub')?.Value;
        } catch (error) {
          if (errorName(error) !== 'UsernameExistsException') throw error;
          const existing = await attributesOf(email);
          // Another tenant's user (or an operator): never reveal which; the email cannot be used here.
          if (!existing || existing['custom:tenant_id'] !== user.tenantId) {
            throw new ConflictError('This email cannot be added.');
          }
          sub = existing.sub;
          // A retry of this tenant's own request: bring the user to what was asked.
          await cognito.call('AdminUpdateUserAttributes', {
            UserPoolId: userPoolId,
            Username: sub ?? email,
            UserAttributes: [{ Name: 'custom:role', Value: user.role }],
          });
          await cognito.call('AdminEnableUser', { UserPoolId: userPoolId, Username: sub ?? email });
        }
        if (!sub) throw new Error('Cognito answered without the user sub');
        await setPassword(sub);
        return { userId: sub };
      }),

    setRole: (userId, role) =>
      guarded(async () => {
        await cognito.call('AdminUpdateUserAttributes', {
          UserPoolId: userPoolId,
          Username: userId,
          UserAttributes: [{ Name: 'custom:role', Value: role }],
        });
      }),

    disable: (userId) =>
      guarded(async () => {
        await cognito.call('AdminDisableUser', { UserPoolId: userPoolId, Username: userId });
      }),

    enable: (userId) =>
      guarded(async () => {
        await cognito.call('AdminEnableUser', { UserPoolId: userPoolId, Username: userId });
      }),

    deleteUser: (userId) =>
      guarded(async () => {
        try {
          await cognito.call('AdminDeleteUser', { UserPoolId: userPoolId, Username: userId });
          return true;
        } catch (error) {
          if (errorName(error) === 'UserNotFoundException') return false;
          throw error;
        }
      }),
  };
}

let containerDirectory: UserDirectory | undefined;

/** The container's user directory, created on first use from `config()` (USER_POOL_ID, LOCAL_USER_PASSWORD). */
export function directory(): UserDirectory {
  if (!containerDirectory) {
    const { aws, auth } = config();
    containerDirectory = createUserDirectory({
      cognito: captureClient(cognitoClient({ region: aws.region, endpoint: aws.endpoint })),
      userPoolId: required(auth.userPoolId, 'USER_POOL_ID'),
      localPassword: auth.localUserPassword,
    });
  }
  return containerDirectory;
}
