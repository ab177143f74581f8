/**
 * The local stack's audit sealer: runs `app.seal_audit_events()` (migration 0008) as the app_sealer role
 * every `everyMs`, in this process, as a scheduled function does in a deployment. An event is chained
 * at the first run after every transaction that was running when it was written has ended.
 */
import postgres from 'postgres';

export interface AuditSealer {
  /** Stops the timer, waits for a run in flight, and closes the connection. */
  stop(): Promise<void>;
}

/** Starts sealing through `adminUrl` (a superuser that may `SET ROLE app_sealer`). */
export function startAuditSealer(adminUrl: string, options: { everyMs: number; onError?: (error: unknown) => void }): AuditSealer {
  const sql = postgres(adminUrl, { max: 1, onnotice: () => undefined });
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const run = async () => {
    try {
      // Acting as the sealer role, so the local stack exercises exactly the deployed grants.
      await sql.begin((tx) => [tx`set local role app_sealer`, tx`select app.seal_audit_events()`]);
    } catch (error) {
      if (!stopped) options.onError?.(error);
    }
    if (!stopped) timer = setTimeout(() => (running = run()), options.everyMs);
  };
  running = run();
  return {
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await running;
      await sql.end({ timeout: 2 });
    },
  };
}
