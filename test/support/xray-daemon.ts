/**
 * A stand-in for the X-Ray daemon in tests and benchmarks: a UDP listener on loopback that keeps every
 * datagram it receives (functions/core/xray.ts sends each as the daemon's header line, a newline and one
 * segment document), and sampled trace headers as Lambda passes them in `_X_AMZN_TRACE_ID`.
 */
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';

/** The line every datagram to the daemon starts with. */
export const DAEMON_HEADER = '{"format":"json","version":1}';

export interface XrayDaemon {
  /** `127.0.0.1:<port>`: the value of `AWS_XRAY_DAEMON_ADDRESS`. */
  readonly address: string;
  /** The datagrams received since the start or the last `clear()`, as received. */
  readonly received: readonly Buffer[];
  /** The document of each datagram received; throws on a datagram that is not the header line and a document. */
  documents<T = Record<string, any>>(): T[];
  /** Bytes received since the start or the last `clear()`. */
  bytes(): number;
  clear(): void;
  /** Waits `settleMs` for datagrams still in flight on loopback, then closes the listener. */
  close(settleMs?: number): Promise<void>;
}

export async function startXrayDaemon(): Promise<XrayDaemon> {
  const socket = dgram.createSocket('udp4');
  let received: Buffer[] = [];
  socket.on('message', (message) => received.push(message));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${socket.address().port}`,
    get received() {
      return received;
    },
    documents: <T>() => received.map((message) => documentOf<T>(message)),
    bytes: () => received.reduce((sum, message) => sum + message.length, 0),
    clear: () => {
      received = [];
    },
    close: async (settleMs = 0) => {
      if (settleMs > 0) await new Promise((resolve) => setTimeout(resolve, settleMs));
      await new Promise<void>((resolve) => socket.close(() => resolve()));
    },
  };
}

function documentOf<T>(message: Buffer): T {
  const text = message.toString('utf8');
  const newline = text.indexOf('\n');
  if (newline < 0 || text.slice(0, newline) !== DAEMON_HEADER) throw new Error(`not an X-Ray daemon datagram: ${text.slice(0, 80)}`);
  return JSON.parse(text.slice(newline + 1)) as T;
}

/** A sampled trace header with a fresh root (of this second) and parent, as Lambda sets per invocation. */
export function sampledTraceHeader(): { header: string; root: string; parent: string } {
  const root = `1-${Math.floor(Date.now() / 1000).toString(16)}-${randomBytes(12).toString('hex')}`;
  const parent = randomBytes(8).toString('hex');
  return { header: `Root=${root};Parent=${parent};Sampled=1`, root, parent };
}
