/**
 * The AWS emulator for the local stack and the tests: `moto_server` (Python moto) spawned on a free
 * port, serving S3, STS, IAM, Cognito, KMS and Secrets Manager. `AWS_ENDPOINT_URL` wins when set.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from './ports';

export const MOTO_MISSING =
  'moto_server was not found: install it with `pip install "moto[server]"`, or set AWS_ENDPOINT_URL to a running AWS emulator.';

export class EmulatorMissingError extends Error {
  constructor() {
    super(MOTO_MISSING);
    this.name = 'EmulatorMissingError';
  }
}

export interface EmulatorHandle {
  readonly endpoint: string;
  /** True when this process started the emulator (and so must stop it). */
  readonly owned: boolean;
  stop(): Promise<void>;
}

async function waitUntilServing(endpoint: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  child.once('exit', () => (exited = true));
  while (Date.now() < deadline) {
    if (exited) throw new Error(`moto_server exited before it served on ${endpoint}`);
    try {
      const response = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(1000) });
      if (response.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`moto_server did not serve on ${endpoint} within ${timeoutMs} ms`);
}

/** Uses `AWS_ENDPOINT_URL` when given, else spawns moto_server on a free (or the given) port. */
export async function startEmulator(options: { endpoint?: string; port?: number } = {}): Promise<EmulatorHandle> {
  if (options.endpoint) return { endpoint: options.endpoint, owned: false, stop: async () => undefined };
  const port = options.port ?? (await freePort());
  const endpoint = `http://127.0.0.1:${port}`;
  const child = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, MOTO_ALLOW_NONEXISTENT_REGION: 'true' },
  });
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'ENOENT' ? new EmulatorMissingError() : error),
    );
  });
  await spawned;
  child.stderr?.resume();
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 3000).unref();
    });
  // An emulator that never served is stopped, not left running without an owner.
  await waitUntilServing(endpoint, child, 30_000).catch(async (error: unknown) => {
    await stop();
    throw error;
  });
  return { endpoint, owned: true, stop };
}
