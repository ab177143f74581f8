/**
 * The X-Ray emitter (functions/core/xray.ts) in this process, sending to a UDP listener: what is sent and
 * when nothing is, the daemon address forms, sockets that fail, concurrent requests, ids, the cut of large
 * documents, subsegments still open when their request's document leaves, and exceptions formatted as the
 * X-Ray SDK formats them.
 */
import dgram from 'node:dgram';
import { startXrayDaemon, type XrayDaemon } from '../../support/xray-daemon';
import {
  MAX_DATAGRAM,
  capturedException,
  configureXray,
  inSubsegment,
  newId,
  newTraceId,
  openSubsegment,
  parseDaemonAddress,
  parseTraceHeader,
  resetXray,
  annotate,
  type SubsegmentDocument,
} from '../../../functions/core/xray';

// The X-Ray SDK's own exception formatting, the reference for ours.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const SdkCapturedException = require('aws-xray-sdk-core/dist/lib/segments/attributes/captured_exception') as new (
  error: unknown,
  remote?: boolean,
) => Record<string, unknown>;

let daemon: XrayDaemon;
const reports: string[] = [];
let header: string | undefined;
let tracing = true;

const docs = () => daemon.documents<SubsegmentDocument>();
const settle = () => new Promise((resolve) => setTimeout(resolve, 50));

function configure(address: string | undefined): void {
  resetXray();
  configureXray({
    enabled: () => tracing,
    traceHeader: () => header,
    daemonAddress: () => address,
    report: (message) => reports.push(message),
  });
}

const root = '1-5759e988-bd862e3fe1be46a994272793';
const facade = '53995c3f42cd8ad8';

beforeAll(async () => {
  daemon = await startXrayDaemon();
});

beforeEach(() => {
  daemon.clear();
  reports.length = 0;
  tracing = true;
  header = `Root=${root};Parent=${facade};Sampled=1`;
  configure(daemon.address);
});

afterAll(async () => {
  resetXray();
  await daemon.close();
});

describe('the trace header', () => {
  it('gives root, parent, the sampling decision and the other fields', () => {
    expect(parseTraceHeader(`Root=${root};Parent=${facade};Sampled=1;Lineage=a87bd80c:0`)).toEqual({
      root, parent: facade, sampled: true, extra: ';Lineage=a87bd80c:0',
    });
    expect(parseTraceHeader(`Root=${root};Parent=${facade};Sampled=0`)?.sampled).toBe(false);
    expect(parseTraceHeader(`Root=${root}`)).toBeUndefined();
    expect(parseTraceHeader(undefined)).toBeUndefined();
  });
});

describe('the daemon address', () => {
  it('is read in the forms of the X-Ray SDK, 127.0.0.1:2000 by default', () => {
    expect(parseDaemonAddress(undefined)).toEqual({ host: '127.0.0.1', port: 2000 });
    expect(parseDaemonAddress('169.254.79.129:2000')).toEqual({ host: '169.254.79.129', port: 2000 });
    expect(parseDaemonAddress('udp:10.0.0.1:2001 tcp:10.0.0.2:2002')).toEqual({ host: '10.0.0.1', port: 2001 });
    expect(parseDaemonAddress('tcp:10.0.0.2:2002 udp:10.0.0.1:2001')).toEqual({ host: '10.0.0.1', port: 2001 });
    expect(parseDaemonAddress('xray.local:3000')).toEqual({ host: 'xray.local', port: 3000 });
  });

  it('refuses what the SDK refuses', () => {
    for (const bad of ['127.0.0.1', ':2000', 'udp:127.0.0.1:2000', '127.0.0.1:x', 'udp:1.1.1.1:1 udp:1.1.1.1:2', 'a:1 b:2 c:3']) {
      expect(() => parseDaemonAddress(bad)).toThrow(/Invalid X-Ray daemon address/);
    }
  });

  it('falls back to the default, reported once, when not understood', async () => {
    configure('no-port');
    await inSubsegment('## a', async () => undefined);
    await inSubsegment('## b', async () => undefined);
    await settle();
    expect(reports.filter((r) => /address/.test(r))).toHaveLength(1);
  });
});

describe('what is sent', () => {
  it('is one datagram per request: the top subsegment with its trace and facade parent, the others nested', async () => {
    const result = await inSubsegment('## route', async (open) => {
      annotate(open!, 'tenant_id', 't-1');
      annotate(open!, 'ColdStart', false);
      await inSubsegment('postgres route', async (inner) => {
        await inSubsegment('nested', async () => undefined);
        annotate(inner!, 'rows', 2);
      });
      return 42;
    });
    expect(result).toBe(42);
    await settle();
    expect(daemon.received).toHaveLength(1);
    expect(daemon.received[0]!.toString('utf8').startsWith('{"format":"json","version":1}\n')).toBe(true);
    const [doc] = docs();
    expect(doc).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{16}$/),
      name: '## route',
      start_time: expect.any(Number),
      end_time: expect.any(Number),
      type: 'subsegment',
      trace_id: root,
      parent_id: facade,
      annotations: { tenant_id: 't-1', ColdStart: false },
      subsegments: [
        {
          id: expect.stringMatching(/^[0-9a-f]{16}$/),
          name: 'postgres route',
          start_time: expect.any(Number),
          end_time: expect.any(Number),
          annotations: { rows: 2 },
          subsegments: [{ id: expect.any(String), name: 'nested', start_time: expect.any(Number), end_time: expect.any(Number) }],
        },
      ],
    });
    expect(doc!.end_time!).toBeGreaterThanOrEqual(doc!.subsegments![0]!.end_time!);
  });

  it('records a thrown error as a fault and rethrows it', async () => {
    await expect(inSubsegment('## failing', async () => {
      throw new TypeError('no');
    })).rejects.toThrow('no');
    await settle();
    const [doc] = docs();
    expect(doc!.fault).toBe(true);
    expect(doc!.cause).toEqual({ working_directory: process.cwd(), exceptions: [expect.objectContaining({ type: 'TypeError', message: 'no', remote: false })] });
  });

  it.each([
    ['Sampled=0', () => { header = `Root=${root};Parent=${facade};Sampled=0`; }],
    ['no trace header', () => { header = undefined; }],
    ['a header without a parent', () => { header = `Root=${root}`; }],
    ['tracing off', () => { tracing = false; }],
  ])('is nothing with %s: the work just runs, nothing is reported', async (_, arrange) => {
    arrange();
    let ran = 0;
    const out = await inSubsegment('## route', async (open) => {
      expect(open).toBeUndefined();
      await inSubsegment('postgres route', async () => { ran++; });
      ran++;
      return 'done';
    });
    expect(out).toBe('done');
    expect(ran).toBe(2);
    expect(openSubsegment('x')).toBeUndefined();
    await settle();
    expect(daemon.received).toHaveLength(0);
    expect(reports).toEqual([]);
  });

  it('keeps concurrent requests apart, each in its own trace', async () => {
    const other = '1-5759e988-00000000000000000000000a';
    let release!: () => void;
    const gate = new Promise<void>((resolve) => { release = resolve; });
    const first = inSubsegment('## first', async () => {
      await gate;
      await inSubsegment('first child', async () => undefined);
    });
    header = `Root=${other};Parent=1111111111111111;Sampled=1`;
    const second = inSubsegment('## second', async () => {
      release();
      await new Promise((resolve) => setImmediate(resolve));
      await inSubsegment('second child', async () => undefined);
    });
    await Promise.all([first, second]);
    await settle();
    const byName = Object.fromEntries(docs().map((d) => [d.name, d]));
    expect(Object.keys(byName).sort()).toEqual(['## first', '## second']);
    expect(byName['## first']!.trace_id).toBe(root);
    expect(byName['## first']!.subsegments!.map((s) => s.name)).toEqual(['first child']);
    expect(byName['## second']!.trace_id).toBe(other);
    expect(byName['## second']!.parent_id).toBe('1111111111111111');
    expect(byName['## second']!.subsegments!.map((s) => s.name)).toEqual(['second child']);
  });

  it('sends a subsegment still open when its request\'s document leaves on its own, under its parent', async () => {
    let finish!: () => void;
    let late!: Promise<void>;
    await inSubsegment('## route', async () => {
      late = inSubsegment('background', () => new Promise<void>((resolve) => { finish = resolve; }));
      await inSubsegment('done early', async () => undefined);
    });
    await settle();
    expect(docs().map((d) => [d.name, (d.subsegments ?? []).map((s) => s.name)])).toEqual([['## route', ['done early']]]);
    finish();
    await late;
    await settle();
    const [top, background] = docs();
    expect(background).toEqual(expect.objectContaining({ name: 'background', type: 'subsegment', trace_id: root, parent_id: top!.id, end_time: expect.any(Number) }));
  });

  it('cuts a document over the UDP limit into its children, each under its parent', async () => {
    const big = 'x'.repeat(20_000);
    await inSubsegment('## large', async () => {
      for (let i = 0; i < 5; i++) await inSubsegment(`part ${i}`, async (open) => annotate(open!, 'blob', big));
    });
    await settle();
    expect(daemon.received.length).toBe(6);
    for (const message of daemon.received) expect(message.length).toBeLessThanOrEqual(MAX_DATAGRAM);
    const all = docs();
    const top = all.find((d) => d.name === '## large')!;
    expect(top.subsegments).toBeUndefined();
    expect(all.filter((d) => d.name.startsWith('part ')).map((d) => [d.parent_id, d.trace_id, d.type])).toEqual(Array(5).fill([top.id, root, 'subsegment']));
  });

  it('drops, reported once, a single subsegment larger than a datagram', async () => {
    await inSubsegment('## huge', async (open) => annotate(open!, 'blob', 'y'.repeat(70_000)));
    await inSubsegment('## huge', async (open) => annotate(open!, 'blob', 'y'.repeat(70_000)));
    await settle();
    expect(daemon.received).toHaveLength(0);
    expect(reports).toEqual([expect.stringMatching(/larger than a datagram/)]);
  });
});

describe('the daemon socket', () => {
  it('is connected while the first request runs, so that a document leaves in the close, before the handler returns', async () => {
    await inSubsegment('## first', async () => settle());
    const send = jest.spyOn(dgram.Socket.prototype, 'send');
    try {
      await inSubsegment('## second', async () => undefined);
      // Sent synchronously by the close, to the connected address (no address given per send).
      expect(send).toHaveBeenCalledTimes(1);
      expect(send.mock.calls[0]!.length).toBe(2);
    } finally {
      send.mockRestore();
    }
    await settle();
    expect(docs().map((d) => d.name)).toEqual(['## first', '## second']);
  });

  it('keeps what closes while it connects and sends it once connected', async () => {
    await inSubsegment('## at once', async () => undefined);
    await settle();
    expect(docs().map((d) => d.name)).toEqual(['## at once']);
  });
});

describe('a daemon socket that fails', () => {
  it('never fails or delays the request; a closed socket is replaced, and reported once', async () => {
    await inSubsegment('## connects', async () => 0);
    await settle();
    daemon.clear();
    const send = jest.spyOn(dgram.Socket.prototype, 'send').mockImplementation(() => {
      throw Object.assign(new Error('Not running'), { code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' });
    });
    try {
      await expect(inSubsegment('## one', async () => 1)).resolves.toBe(1);
      await expect(inSubsegment('## two', async () => 2)).resolves.toBe(2);
    } finally {
      send.mockRestore();
    }
    expect(reports).toHaveLength(1);
    await inSubsegment('## three', async () => 3);
    await settle();
    // '## one' was lost with the closed socket; '## two' waited for the new one to connect.
    expect(docs().map((d) => d.name)).toEqual(['## two', '## three']);
  });

  it('never fails the request when the daemon cannot be reached', async () => {
    configure('host.invalid:2000');
    await expect(inSubsegment('## one', async () => 'answered')).resolves.toBe('answered');
    await expect(inSubsegment('## two', async () => 'answered')).resolves.toBe('answered');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(reports).toEqual([expect.stringMatching(/^X-Ray (daemon not reachable|subsegment not sent)/)]);
  });
});

describe('ids', () => {
  it('are 16 hex digits, unique, across pool refills', () => {
    const ids = Array.from({ length: 5000 }, () => newId());
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{16}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('make trace ids of X-Ray\'s form: 1-<8 hex time>-<24 hex>', () => {
    const id = newTraceId(Date.UTC(2026, 0, 1));
    expect(id).toMatch(/^1-[0-9a-f]{8}-[0-9a-f]{24}$/);
    expect(parseInt(id.slice(2, 10), 16)).toBe(Date.UTC(2026, 0, 1) / 1000);
  });

  it('of subsegments are unique too', async () => {
    for (let i = 0; i < 50; i++) await inSubsegment('## many', async () => inSubsegment('child', async () => undefined));
    await settle();
    const ids = docs().flatMap((d) => [d.id, ...(d.subsegments ?? []).map((s) => s.id)]);
    expect(new Set(ids).size).toBe(100);
  });
});

describe('exceptions', () => {
  it('are formatted as the X-Ray SDK formats them (message, type, stack frames, remote)', () => {
    class CustomError extends Error {
      constructor() {
        super('custom failure');
        this.name = 'CustomError';
      }
    }
    const errors: unknown[] = [new Error('plain'), new CustomError(), 'a string', { message: 'shaped', name: 'Shaped', stack: 'Shaped: x\n    at fn (/a/b.js:3:4)\n    at /c/d.js:5:6\n    at new Thing (node:internal/x:7:8)' }];
    for (const error of errors) {
      for (const remote of [false, true]) {
        const { id, ...ours } = capturedException(error, remote);
        const { id: sdkId, ...sdk } = new SdkCapturedException(error, remote);
        expect(id).toMatch(/^[0-9a-f]{16}$/);
        expect(sdkId).toMatch(/^[0-9a-f]{16}$/);
        expect(ours).toEqual({ ...sdk });
      }
    }
  });
});
