/**
 * Runs a script in a fresh `node` (this process's binary) with `args` and an environment of the
 * caller's choosing, and collects what it wrote: the bundle tests and the benchmarks run built bundles
 * this way, as Lambda would load them, away from the test process's modules and environment.
 */
import { spawn } from 'node:child_process';

export interface NodeScriptResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function runNodeScript(
  script: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  options: { readonly timeoutMs?: number } = {},
): Promise<NodeScriptResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: options.timeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}
