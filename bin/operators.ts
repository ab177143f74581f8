/**
 * `npm run operators -- add|remove <email>`: owner-run. Makes or unmakes a platform operator
 * (`superadmin`): the only writer of app.platform_operators, which no runtime or control-plane login
 * role may write. `add` finds the Cognito user by email (or creates it with role superadmin and no
 * tenant: deployed, Cognito sends the invitation; locally, it gets the local stack's password) and
 * records it active; a member of a tenant cannot become an operator. `remove` deletes the record and
 * disables the user, so a token they still hold is refused at the next request.
 *
 * Settings: DATABASE_URL (the owner: a superuser or the RDS master user), USER_POOL_ID, AWS_REGION and
 * AWS_ENDPOINT_URL as usual; when the local stack runs and they are unset, its `.local/` files serve.
 * Exit 0 done, 2 bad arguments or an email that cannot be an operator, 1 anything else.
 */
import { readFile } from 'node:fs/promises';
import {
  AdminCreateUserCommand,
  AdminDisableUserCommand,
  AdminEnableUserCommand,
  AdminGetUserCommand,
  AdminSetUserPasswordCommand,
  CognitoIdentityProviderClient,
} from '@aws-sdk/client-cognito-identity-provider';
import postgres from 'postgres';
import { STACK_FILE, type StackFile } from './stack/stack-file';

/** The email cannot be (or is not) a platform operator. */
export class OperatorRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OperatorRefusedError';
  }
}

export interface OperatorDirectory {
  readonly cognito: CognitoIdentityProviderClient;
  readonly userPoolId: string;
  /** Local stack only: the password a created operator gets instead of an invitation. */
  readonly localPassword?: string;
}

async function findUser(d: OperatorDirectory, email: string): Promise<{ sub: string; tenantId?: string; role?: string } | undefined> {
  try {
    const user = await d.cognito.send(new AdminGetUserCommand({ UserPoolId: d.userPoolId, Username: email }));
    const attrs = Object.fromEntries((user.UserAttributes ?? []).map((a) => [a.Name, a.Value]));
    return { sub: attrs.sub!, tenantId: attrs['custom:tenant_id'], role: attrs['custom:role'] };
  } catch (error) {
    if ((error as { name?: string }).name === 'UserNotFoundException') return undefined;
    throw error;
  }
}

/** Makes `email` an active platform operator; answers its user id. `db` connects as the owner. */
export async function addOperator(db: postgres.Sql, d: OperatorDirectory, rawEmail: string): Promise<string> {
  const email = rawEmail.trim().toLowerCase();
  let user = await findUser(d, email);
  if (user && (user.tenantId || user.role !== 'superadmin')) {
    throw new OperatorRefusedError(`${email} is a member of a tenant and cannot be a platform operator.`);
  }
  if (!user) {
    await d.cognito.send(
      new AdminCreateUserCommand({
        UserPoolId: d.userPoolId,
        Username: email,
        MessageAction: d.localPassword === undefined ? undefined : 'SUPPRESS',
        UserAttributes: [
          { Name: 'email', Value: email },
          { Name: 'email_verified', Value: 'true' },
          { Name: 'custom:role', Value: 'superadmin' },
        ],
      }),
    );
    user = (await findUser(d, email))!;
  }
  if (d.localPassword !== undefined) {
    await d.cognito.send(new AdminSetUserPasswordCommand({ UserPoolId: d.userPoolId, Username: user.sub, Password: d.localPassword, Permanent: true }));
  }
  await d.cognito.send(new AdminEnableUserCommand({ UserPoolId: d.userPoolId, Username: user.sub }));
  await db`
    insert into app.platform_operators (user_id, status) values (${user.sub}, 'active')
    on conflict (user_id) do update set status = 'active'`;
  return user.sub;
}

/** Unmakes `email` as a platform operator (record deleted, user disabled). */
export async function removeOperator(db: postgres.Sql, d: OperatorDirectory, rawEmail: string): Promise<void> {
  const email = rawEmail.trim().toLowerCase();
  const user = await findUser(d, email);
  if (!user || user.tenantId || user.role !== 'superadmin') throw new OperatorRefusedError(`${email} is not a platform operator.`);
  await db`delete from app.platform_operators where user_id = ${user.sub}`;
  await d.cognito.send(new AdminDisableUserCommand({ UserPoolId: d.userPoolId, Username: user.sub }));
}

async function localStack(): Promise<StackFile | undefined> {
  try {
    return JSON.parse(await readFile(STACK_FILE, 'utf8')) as StackFile;
  } catch {
    return undefined;
  }
}

function exit(code: 1 | 2, line: string): never {
  process.stderr.write(`${line}\n`);
  process.exit(code);
}

async function main(): Promise<void> {
  const [command, email, ...rest] = process.argv.slice(2);
  if ((command !== 'add' && command !== 'remove') || !email || rest.length > 0 || !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) {
    exit(2, 'Usage: npm run operators -- add|remove <email>');
  }
  const stack = await localStack();
  const databaseUrl = process.env.DATABASE_URL ?? stack?.adminUrl;
  const userPoolId = process.env.USER_POOL_ID ?? stack?.userPoolId;
  if (!databaseUrl || !userPoolId) exit(1, 'Set DATABASE_URL (the owner) and USER_POOL_ID, or start the local stack with `npm start`.');
  const endpoint = process.env.AWS_ENDPOINT_URL ?? stack?.endpoint;
  const cognito = new CognitoIdentityProviderClient({
    region: process.env.AWS_REGION ?? stack?.region ?? 'us-east-1',
    endpoint,
    ...(stack && !process.env.USER_POOL_ID ? { credentials: { accessKeyId: 'local', secretAccessKey: 'local' } } : {}),
  });
  const db = postgres(databaseUrl, { max: 1, onnotice: () => undefined });
  const directory: OperatorDirectory = { cognito, userPoolId, localPassword: stack && !process.env.USER_POOL_ID ? stack.localPassword : undefined };
  try {
    if (command === 'add') process.stdout.write(`${email} is a platform operator (user ${await addOperator(db, directory, email)})\n`);
    else {
      await removeOperator(db, directory, email);
      process.stdout.write(`${email} is no longer a platform operator\n`);
    }
  } catch (error) {
    if (error instanceof OperatorRefusedError) exit(2, error.message);
    exit(1, error instanceof Error ? error.message : String(error));
  } finally {
    cognito.destroy();
    await db.end({ timeout: 5 });
  }
}

if (require.main === module) void main();
