/**
 * A TCP proxy for benchmarks that makes round trips visible: it forwards bytes between a client and a
 * server unchanged, optionally holds every chunk back for a fixed delay (as if the link were slow), and
 * counts what passed.
 *
 * Two ways to count round trips, both exposed here:
 *  - `turns`: a client→server chunk starts a new turn when it is the first on its connection or when
 *    the proxy has relayed server→client bytes since the previous client chunk. A client that pipelines
 *    (sends everything it can before reading) makes one turn per exchange however many TCP chunks the
 *    kernel splits it into; a client that waits for an answer before sending again makes one turn per
 *    answer. With an upstream delay the server cannot answer a chunk before the client's next chunk of
 *    the same burst has arrived, so a split burst is never miscounted as two turns.
 *  - latency: with `upstreamDelayMs = D`, a request that takes N round trips takes about N × D longer
 *    than without the proxy, whatever the client does. Dividing the extra time by D is a cross-check
 *    that needs no knowledge of the protocol.
 *
 * Order is preserved per direction (a chunk is never released before an earlier one). Backpressure is
 * passed through: when the receiving side's buffer is full, the sending side is paused. Sockets are set
 * to no-delay, so the proxy adds no Nagle coalescing of its own.
 *
 * Generic: it knows nothing of Postgres or HTTP. Use it for any TCP client you want to measure.
 *
 * @example
 *   const proxy = await startDelayProxy({ target: { host: '127.0.0.1', port: 5432 }, upstreamDelayMs: 20 });
 *   const sql = postgres(proxy.rewriteUrl(databaseUrl), { max: 1 });
 *   await sql`select 1`; // connect and warm up outside the measurement
 *   proxy.reset();
 *   await doOneRequest(sql);
 *   console.log(proxy.stats().turns); // round trips of one request
 *   await sql.end();
 *   await proxy.close();
 */
import net from 'node:net';

export interface DelayProxyOptions {
  /** Where to forward connections. */
  readonly target: { readonly host: string; readonly port: number };
  /** Delay added to every client→server chunk, in milliseconds. @default 0 */
  readonly upstreamDelayMs?: number;
  /** Delay added to every server→client chunk, in milliseconds. @default 0 */
  readonly downstreamDelayMs?: number;
  /** Address to listen on. @default '127.0.0.1' */
  readonly host?: string;
  /** Port to listen on; 0 picks a free one. @default 0 */
  readonly port?: number;
}

/** Counters since the proxy started or since the last `reset()`. */
export interface DelayProxyStats {
  /** Connections accepted. */
  readonly connections: number;
  /** Client→server exchanges: see the module comment. The round trips a client made. */
  readonly turns: number;
  /** Client→server `data` events (TCP reads); ≥ turns, depends on the kernel's segmentation. */
  readonly upstreamChunks: number;
  readonly upstreamBytes: number;
  /** Server→client `data` events. */
  readonly downstreamChunks: number;
  readonly downstreamBytes: number;
}

export interface DelayProxy {
  readonly host: string;
  readonly port: number;
  /** `url` with its host and port replaced by the proxy's (credentials, path and query kept). */
  rewriteUrl(url: string): string;
  stats(): DelayProxyStats;
  /** Zeroes the counters. Open connections stay open; their next client chunk starts a new turn. */
  reset(): void;
  /** Stops listening and destroys every open connection. */
  close(): Promise<void>;
}

interface Counters {
  connections: number;
  turns: number;
  upstreamChunks: number;
  upstreamBytes: number;
  downstreamChunks: number;
  downstreamBytes: number;
}

function zero(): Counters {
  return { connections: 0, turns: 0, upstreamChunks: 0, upstreamBytes: 0, downstreamChunks: 0, downstreamBytes: 0 };
}

/**
 * Relays `from` to `to` in order, each chunk released `delayMs` after it arrived. Ends `to` once `from`
 * has ended and every held chunk has been written.
 */
function relay(from: net.Socket, to: net.Socket, delayMs: number, onChunk: (chunk: Buffer) => void, onRelayed: () => void): void {
  const held: { due: number; chunk: Buffer }[] = [];
  let timer: NodeJS.Timeout | undefined;
  let ended = false;

  const flush = (): void => {
    timer = undefined;
    const now = performance.now();
    while (held.length > 0 && held[0]!.due <= now) {
      const { chunk } = held.shift()!;
      if (to.destroyed) return;
      onRelayed();
      if (!to.write(chunk) && !from.isPaused()) {
        from.pause();
        to.once('drain', () => from.resume());
      }
    }
    if (held.length > 0) timer = setTimeout(flush, Math.max(0, held[0]!.due - now));
    else if (ended) to.end();
  };

  from.on('data', (chunk: Buffer) => {
    onChunk(chunk);
    if (delayMs <= 0 && held.length === 0) {
      onRelayed();
      if (!to.write(chunk)) {
        from.pause();
        to.once('drain', () => from.resume());
      }
      return;
    }
    held.push({ due: performance.now() + delayMs, chunk });
    timer ??= setTimeout(flush, delayMs);
  });
  from.on('end', () => {
    ended = true;
    if (held.length === 0) to.end();
  });
  to.on('close', () => {
    if (timer !== undefined) clearTimeout(timer);
    held.length = 0;
  });
}

/** Starts a proxy listening on `options.host:options.port` (a free port by default). */
export function startDelayProxy(options: DelayProxyOptions): Promise<DelayProxy> {
  const upstreamDelayMs = options.upstreamDelayMs ?? 0;
  const downstreamDelayMs = options.downstreamDelayMs ?? 0;
  const listenHost = options.host ?? '127.0.0.1';
  let counters = zero();
  // Bumped by reset(): every open connection's next client chunk then starts a new turn.
  let generation = 0;
  const sockets = new Set<net.Socket>();

  const server = net.createServer((client) => {
    counters.connections++;
    const upstream = net.connect({ host: options.target.host, port: options.target.port });
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      // Either side failing ends the pair; the client sees a closed connection, as it would without us.
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());

    // True when the server has spoken since the client's last chunk: the client's next chunk is a new turn.
    let serverSpoke = true;
    let seenGeneration = generation;
    relay(
      client,
      upstream,
      upstreamDelayMs,
      (chunk) => {
        counters.upstreamChunks++;
        counters.upstreamBytes += chunk.length;
        if (serverSpoke || seenGeneration !== generation) counters.turns++;
        serverSpoke = false;
        seenGeneration = generation;
      },
      () => undefined,
    );
    relay(
      upstream,
      client,
      downstreamDelayMs,
      (chunk) => {
        counters.downstreamChunks++;
        counters.downstreamBytes += chunk.length;
      },
      () => {
        serverSpoke = true;
      },
    );
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, listenHost, () => {
      server.off('error', reject);
      const address = server.address();
      if (typeof address !== 'object' || address === null) {
        reject(new Error('the proxy has no address'));
        return;
      }
      const port = address.port;
      resolve({
        host: listenHost,
        port,
        rewriteUrl(url) {
          const rewritten = new URL(url);
          rewritten.hostname = listenHost;
          rewritten.port = String(port);
          return rewritten.toString();
        },
        stats: () => ({ ...counters }),
        reset() {
          counters = zero();
          generation++;
        },
        close: () =>
          new Promise<void>((done) => {
            for (const socket of sockets) socket.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}
