/**
 * The TCP sockets of one postgres.js client, opened by this module (postgres.js's `socket` option) so
 * that the client can be made to give up on them. postgres.js has no query timeout and no way to close
 * one connection: a query sent to a frozen server (SIGSTOP, a hung host, a black-holed network path)
 * waits for ever, and every later query queued on that connection waits behind it. Destroying the
 * socket settles what waits on it (CONNECTION_CLOSED) and returns the connection to the pool, which
 * opens a fresh one, bounded by `connect_timeout`, at its next use.
 */
import net from 'node:net';

/** The part of postgres.js's parsed options that the socket factory reads. */
interface SocketTarget {
  readonly host: readonly string[];
  readonly port: readonly number[];
  readonly path?: string | false;
}

/** A socket as postgres.js reads it: `host` names the TLS server (verify-full) when it is not an IP. */
type PgSocket = net.Socket & { host?: string; port?: number };

export interface ClientSockets {
  /** postgres.js's `socket` option: a socket that is connecting; postgres.js writes once it is up. */
  readonly open: (target: SocketTarget) => net.Socket;
  /** Destroys every open socket; answers how many there were. */
  destroyAll(): number;
}

/**
 * A socket factory for one client. Each socket connects to the client's first host (the project
 * configures one); writes made before it is connected are buffered by Node, and a failed connect ends
 * in `error` and `close`, which postgres.js handles as for its own sockets.
 */
export function clientSockets(): ClientSockets {
  const sockets = new Set<net.Socket>();
  return {
    open(target) {
      const socket: PgSocket = target.path
        ? net.connect({ path: target.path })
        : net.connect({ host: target.host[0] ?? '127.0.0.1', port: target.port[0] ?? 5432 });
      socket.host = target.path ? undefined : target.host[0];
      socket.port = target.path ? undefined : target.port[0];
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      return socket;
    },
    destroyAll() {
      const count = sockets.size;
      for (const socket of sockets) socket.destroy();
      sockets.clear();
      return count;
    },
  };
}
