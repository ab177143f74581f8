/**
 * CPU time used by a local Postgres server, read from /proc (Linux): the postmaster's own time, the
 * time of the backends it has already reaped (cutime/cstime) and that of its live children. Lets a
 * benchmark say how much of a request's cost lands in the database rather than in Node.
 */
import { readdirSync, readFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

interface Stat {
  readonly ppid: number;
  readonly utime: number;
  readonly stime: number;
  readonly cutime: number;
  readonly cstime: number;
}

function stat(pid: number): Stat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces; fields after its closing parenthesis are fixed.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(fields[1]), utime: Number(fields[11]), stime: Number(fields[12]), cutime: Number(fields[13]), cstime: Number(fields[14]) };
  } catch {
    return undefined;
  }
}

/**
 * A reader of the server's CPU seconds so far, given the pid of any backend (`pg_backend_pid()`), or
 * undefined when /proc does not show it (another host, another OS).
 */
export function postgresCpuReader(backendPid: number): (() => number) | undefined {
  const backend = stat(backendPid);
  if (!backend) return undefined;
  const postmaster = backend.ppid;
  if (!stat(postmaster)) return undefined;
  return () => {
    const own = stat(postmaster)!;
    let ticks = own.utime + own.stime + own.cutime + own.cstime;
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const child = stat(Number(entry));
      if (child?.ppid === postmaster) ticks += child.utime + child.stime;
    }
    return ticks / TICKS_PER_SECOND;
  };
}
