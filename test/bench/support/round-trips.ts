/**
 * Counts the round trips of one call of anything that talks to a TCP server through a client you build
 * from a URL (a postgres.js client, a handler wired to one). A delay proxy (./delay-proxy.ts) sits
 * between client and server; the client is warmed up outside the count (connected, statements
 * prepared), then `calls` calls are made one at a time and the proxy's turns are divided by `calls`.
 * Cross-check that needs no knowledge of the protocol: the same calls through a direct client, and the
 * extra time per call divided by the injected delay.
 */
import { performance } from 'node:perf_hooks';
import { startDelayProxy } from './delay-proxy';

export interface Closable {
  end(options?: { timeout?: number }): Promise<void>;
}

export interface RoundTripCount {
  /** Client→server turns per call, counted by the proxy. */
  readonly turns: number;
  /** Client→server TCP chunks per call (≥ turns; depends on the kernel's segmentation). */
  readonly chunks: number;
  /** (time per call through the proxy − time per call direct) ÷ the injected delay. */
  readonly byLatency: number;
}

export async function countRoundTrips<C extends Closable>(options: {
  /** Server URL; its host and port are what the proxy forwards to. */
  readonly url: string;
  /** Builds a client for `url` (the proxy's URL, or the direct one for the cross-check). One connection. */
  readonly client: (url: string) => C;
  /** One call; `i` counts calls, so that callers can vary tenants. */
  readonly call: (client: C, i: number) => Promise<unknown>;
  readonly calls?: number;
  readonly warmup?: number;
  readonly delayMs?: number;
}): Promise<RoundTripCount> {
  const calls = options.calls ?? 20;
  const warmup = options.warmup ?? 3;
  const delayMs = options.delayMs ?? 20;
  const target = new URL(options.url);
  const proxy = await startDelayProxy({ target: { host: target.hostname, port: Number(target.port || 5432) }, upstreamDelayMs: delayMs });
  const delayed = options.client(proxy.rewriteUrl(options.url));
  const direct = options.client(options.url);
  try {
    for (let i = 0; i < warmup; i++) {
      await options.call(delayed, i);
      await options.call(direct, i);
    }
    const time = async (client: C): Promise<number> => {
      const started = performance.now();
      for (let i = 0; i < calls; i++) await options.call(client, warmup + i);
      return (performance.now() - started) / calls;
    };
    const directMs = await time(direct);
    proxy.reset();
    const delayedMs = await time(delayed);
    const stats = proxy.stats();
    if (stats.connections !== 0) throw new Error('the client opened a new connection while being counted: use one connection');
    return { turns: stats.turns / calls, chunks: stats.upstreamChunks / calls, byLatency: (delayedMs - directMs) / delayMs };
  } finally {
    await Promise.all([delayed.end({ timeout: 5 }), direct.end({ timeout: 5 })]);
    await proxy.close();
  }
}
