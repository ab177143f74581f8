/**
 * The TCP sockets of one postgres.js client, opened by this module (postgres.js's `socket` option) so
 * that the client can be made to give up on them. postgres.js has no query timeout and no way to close
 * one connection: a query sent to a frozen server (SIGSTOP, a hung host, a black-holed network path)
 * waits for ever, and every later query queued on that connection waits behind it. Destroying the
 * socket (under TLS too: the TLS socket closes with it) settles what waits on it (CONNECTION_CLOSED)
 * and returns the connection to the pool, which opens a fresh one, bounded by `connect_timeout`, at its
 * next use.
 */
import net from 'node:net';

export interface ClientSockets {
  /**
   * postgres.js's `socket` option: a socket connecting to the client's first host (the project
   * configures one; no Unix-domain sockets). postgres.js writes at once: Node buffers until connected,
   * and a failed connect ends in `error` and `close`, handled as for postgres.js's own sockets.
   */
  readonly open: (target: { readonly host: readonly string[]; readonly port: readonly number[] }) => net.Socket;
  /** Destroys every open socket. */
  destroyAll(): void;
}

/** A socket factory for one client. */
export function clientSockets(): ClientSockets {
  const sockets = new Set<net.Socket>();
  return {
    open: ({ host: [host], port: [port] }) => {
      // `host` names the TLS server for verify-full (postgres.js reads it from the socket).
      // No Nagle: a transaction's statements leave in more than one write when they do not all fit in
      // one (postgres.js writes at 1 KiB, and COMMIT follows its work's last statements one event-loop
      // turn later); with Nagle's algorithm a later write waits for the ACK of the first, a round trip.
      const socket = Object.assign(net.connect({ port: port!, host, noDelay: true }), { host });
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      return socket;
    },
    destroyAll: () => sockets.forEach((socket) => socket.destroy()),
  };
}
