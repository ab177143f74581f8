/**
 * CPU pinning for benchmarks that keep processes apart on a two-core machine (`taskset`, Linux).
 */
import { execFileSync } from 'node:child_process';

/** Whether `taskset` can be run here. */
export function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Pins every thread of `pid` to `cpus` (a taskset list, e.g. `0` or `0,1`). */
export function pin(pid: number, cpus: string): void {
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}
