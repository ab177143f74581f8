/**
 * The request deadline: every request is answered within `REQUEST_DEADLINE_MS` (core/config.ts), with a
 * 503 and `Retry-After` when a dependency is too slow, instead of API Gateway's gateway timeout at 29 s
 * while the work commits later behind the caller's back.
 */
import { ServiceUnavailableError } from './errors';

/** Read by the work's last steps: once expired, the transaction must not commit. */
export interface Deadline {
  readonly expired: boolean;
}

/** The request ran out of time waiting on a dependency; nothing it did was committed. */
export class DeadlineExceededError extends ServiceUnavailableError {
  constructor() {
    super('The request could not be completed in time; try again shortly.');
  }
}

/**
 * Runs `run` and answers its result, or rejects with {@link DeadlineExceededError} once `ms` have
 * passed. The work is not stopped (a promise cannot be), so it is told: `deadline.expired` turns true,
 * and the wrapper checks it before COMMIT (core/handler.ts), so late work rolls back.
 */
export async function withinDeadline<T>(ms: number, run: (deadline: Deadline) => Promise<T>): Promise<T> {
  const deadline = { expired: false };
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      deadline.expired = true;
      reject(new DeadlineExceededError());
    }, ms);
  });
  const work = run(deadline);
  // Once the deadline has answered, the late work's own failure is no one's to report.
  work.catch(() => undefined);
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
