/**
 * `npm start`: the whole API on this machine (API.md, "Local stack"). Embedded Postgres keeps its data
 * under `.local/postgres`, moto_server is spawned on a free port (or AWS_ENDPOINT_URL is used), the seed
 * is applied, and the API serves on http://127.0.0.1:${PORT:-3000}. Prints one `ready` line once it
 * serves; `.local/stack.json` tells `npm run token` how to sign the seed users in. Ctrl-C / SIGTERM stop
 * everything it started. Quiet unless LOG_LEVEL=debug (or info, warn) is set.
 */
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startLocalStack, type LocalStack } from './stack/local-stack';
import { EmulatorMissingError } from './stack/moto';
import { portInUse } from './stack/ports';
import { LOCAL_DIR, STACK_FILE, type StackFile } from './stack/stack-file';

const LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;

/** The stack another `npm start` runs from this directory, if its process is still alive. */
async function runningStack(): Promise<StackFile | undefined> {
  let file: StackFile;
  try {
    file = JSON.parse(await readFile(STACK_FILE, 'utf8')) as StackFile;
  } catch {
    return undefined;
  }
  try {
    process.kill(file.pid, 0); // signal 0: only asks whether the process exists
    return file;
  } catch {
    return undefined; // left behind by a stack that was killed without a chance to clean up
  }
}

function fail(line: string): never {
  process.stderr.write(`${line}\n`);
  process.exit(1);
}

// The project supports Node 20 (package.json engines); the SDK's notice about its future would be noise here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

async function main(): Promise<void> {
  const rawPort = process.env.PORT ?? '3000';
  const port = Number(rawPort);
  if (!/^\d{1,5}$/.test(rawPort) || port < 1 || port > 65535) fail(`PORT must be a TCP port (1-65535), got "${rawPort}".`);
  const host = '127.0.0.1';
  const level = (process.env.LOG_LEVEL ?? 'error').toLowerCase();
  if (!(LEVELS as readonly string[]).includes(level)) fail(`LOG_LEVEL must be one of ${LEVELS.join(', ')}, got "${level}".`);
  // Before anything heavy. One stack per .local/: a second Postgres cannot open the same data directory.
  const running = await runningStack();
  if (running) fail(`The local stack is already running (pid ${running.pid}) on ${running.url}: use it, or stop it with Ctrl-C first.`);
  // A busy port would otherwise only be found after Postgres and moto are up.
  if (await portInUse(port, host)) fail(`Port ${port} on ${host} is already in use: stop what uses it, or start with PORT=<another port> npm start.`);

  // The handlers' logger reads its level when a handler module is first loaded, which is after this.
  process.env.POWERTOOLS_LOG_LEVEL ??= level === 'silent' ? 'SILENT' : level.toUpperCase();
  process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
  process.env.POWERTOOLS_TRACE_ENABLED ??= 'false';
  process.env.POWERTOOLS_DEV ??= 'true';
  const debug = level === 'debug' ? (line: string) => process.stderr.write(`${line}\n`) : undefined;

  // Postgres runs as its own system user when we are root: it must traverse .local/ (stack.json stays 0600).
  await mkdir(LOCAL_DIR, { recursive: true });
  await chmod(LOCAL_DIR, 0o755);

  // Installed before anything starts, so a signal during start-up still stops what was started.
  let stack: LocalStack | undefined;
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    debug?.(`${signal}: stopping`);
    if (!stack) return; // still starting: the start-up path stops it as soon as it is up
    await rm(STACK_FILE, { force: true });
    await stack.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));

  try {
    stack = await startLocalStack({
      database: { dir: path.join(LOCAL_DIR, 'postgres'), persistent: true },
      emulatorEndpoint: process.env.AWS_ENDPOINT_URL || undefined,
      port,
      host,
      // Only this process talks to a moto it spawned while seeding, so moto can be made to repeat the subs.
      stableSubs: !process.env.AWS_ENDPOINT_URL,
      // Chains audit events about a second after commit (the deployed sealer runs every minute).
      auditSealMs: 1000,
      log: debug,
      onError: (error) => process.stderr.write(`request failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`),
    });
  } catch (error) {
    if (stopping) process.exit(0);
    if (error instanceof EmulatorMissingError) fail(error.message);
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') fail(`Port ${port} on ${host} is already in use: stop what uses it, or start with PORT=<another port> npm start.`);
    fail(`The local stack did not start: ${error instanceof Error ? error.message : String(error)}`);
  }

  if (stopping) {
    // A signal arrived while starting: stop what was just started.
    await stack.stop();
    process.exit(0);
  }
  const file: StackFile = {
    url: stack.url,
    pid: process.pid,
    endpoint: stack.endpoint,
    region: stack.region,
    userPoolId: stack.userPoolId,
    clientId: stack.clientId,
    accounts: stack.accounts.map(({ username, password, role, tenantId }) => ({ username, password, role, tenantId })),
    localPassword: stack.password,
    adminUrl: stack.adminUrl,
    environment: stack.environment,
  };
  await writeFile(STACK_FILE, JSON.stringify(file, null, 2), { mode: 0o600 });
  await chmod(STACK_FILE, 0o600);

  const tenants = stack.tenants.map((t) => t.id).join(', ');
  process.stdout.write(
    `ready: ${stack.url} (tenants ${tenants}; token: npm run -s token -- --tenant ${stack.tenants[0]?.id ?? 'acme'} --role org_admin)\n`,
  );
}

void main();
