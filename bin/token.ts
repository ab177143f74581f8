/**
 * `npm run -s token -- --tenant <id> --role <role>`: prints only an ID token (one line) for the seed user
 * with that role in that tenant, signed by the running local stack's Cognito emulator (USER_PASSWORD_AUTH).
 * `--role superadmin` needs no tenant. `npm run -s token -- --email <email>`: the same for any active user
 * of the local pool, including users created through the API (the stack gives each the same password).
 * Exit 2 for an unknown tenant, role or user, a disabled user, or bad arguments; exit 1 when the local
 * stack is not running. (`-s` keeps npm's own banner off stdout.)
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { signIn, signInByEmail, UnknownUserError } from './stack/identity';
import { STACK_FILE, type StackFile } from './stack/stack-file';
import { ROLES } from '../functions/core/tenant';

const NOT_RUNNING = 'The local stack is not running: start it with `npm start` (in another terminal) and try again.';

function exit(code: 1 | 2, line: string): never {
  process.stderr.write(`${line}\n`);
  process.exit(code);
}

// The project supports Node 20 (package.json engines); the SDK's notice about its future would be noise here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

async function main(): Promise<void> {
  let values: { tenant?: string; role?: string; email?: string };
  try {
    ({ values } = parseArgs({
      options: { tenant: { type: 'string' }, role: { type: 'string' }, email: { type: 'string' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    exit(2, `${error instanceof Error ? error.message : String(error)}. Usage: npm run -s token -- --tenant <id> --role <role> | --email <email>`);
  }
  const { tenant, role, email } = values;
  if (email !== undefined) {
    if (tenant !== undefined || role !== undefined) exit(2, 'Use either --email or --tenant/--role, not both.');
    await tokenByEmail(email);
    return;
  }
  if (!role) exit(2, 'Usage: npm run -s token -- --tenant <id> --role <org_admin|user|readonly|superadmin>');
  if (!(ROLES as readonly string[]).includes(role)) exit(2, `Unknown role "${role}": use one of ${ROLES.join(', ')}.`);

  let stack: StackFile;
  try {
    stack = JSON.parse(await readFile(STACK_FILE, 'utf8')) as StackFile;
  } catch {
    exit(1, NOT_RUNNING);
  }
  const tenants = [...new Set(stack.accounts.map((a) => a.tenantId).filter((t): t is string => t !== undefined))];
  if (role !== 'superadmin') {
    if (!tenant) exit(2, `--tenant is required for role ${role}: one of ${tenants.join(', ')}.`);
    if (!tenants.includes(tenant)) exit(2, `Unknown tenant "${tenant}": the seed has ${tenants.join(', ')}.`);
  }
  const account = stack.accounts.find((a) => a.role === role && (role === 'superadmin' || a.tenantId === tenant));
  if (!account) exit(2, `The seed has no ${role} user${tenant ? ` in ${tenant}` : ''}.`);

  let token: string;
  try {
    token = await signIn(
      { endpoint: stack.endpoint, region: stack.region, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } },
      { clientId: stack.clientId, username: account.username, password: account.password },
    );
  } catch (error) {
    const name = (error as { name?: string }).name ?? '';
    // Refused connection, or an emulator that no longer knows this pool (a stale stack file).
    if (/ECONNREFUSED|TimeoutError|ResourceNotFound|UserNotFound|NotAuthorized/.test(`${name} ${String(error)}`)) exit(1, NOT_RUNNING);
    exit(1, `The local stack's emulator refused the sign-in: ${error instanceof Error ? error.message : String(error)}`);
  }
  process.stdout.write(`${token}\n`);
}

async function tokenByEmail(email: string): Promise<void> {
  let stack: StackFile;
  try {
    stack = JSON.parse(await readFile(STACK_FILE, 'utf8')) as StackFile;
  } catch {
    exit(1, NOT_RUNNING);
  }
  try {
    const token = await signInByEmail(
      { endpoint: stack.endpoint, region: stack.region, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } },
      { clientId: stack.clientId, email, password: stack.localPassword },
    );
    process.stdout.write(`${token}\n`);
  } catch (error) {
    if (error instanceof UnknownUserError) exit(2, error.message);
    if (/ECONNREFUSED|TimeoutError|ResourceNotFound/.test(`${(error as { name?: string }).name ?? ''} ${String(error)}`)) exit(1, NOT_RUNNING);
    exit(1, `The local stack's emulator refused the sign-in: ${error instanceof Error ? error.message : String(error)}`);
  }
}

void main();
