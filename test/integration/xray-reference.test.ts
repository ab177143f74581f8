/**
 * Our X-Ray emitter (functions/core/xray.ts) against the reference, Powertools' tracer on the X-Ray SDK:
 * the same traced work (support/xray-reference-runner.ts: nested subsegments, annotations, a failing step,
 * an error recorded twice, captured S3 (the SDK's client and the functions' own) and KMS calls that
 * succeed, fail and are throttled, outgoing HTTP)
 * runs once through each in a Lambda-shaped child process, each sending to a UDP listener as its daemon,
 * against one local AWS stub. The two recorded trees must be the same: names, nesting, trace, namespaces,
 * annotations, `aws` and `http` attributes, error/fault/throttle, causes (types, messages, first frame,
 * which subsegment an error points at); ids and times differ by nature, and how the documents are cut
 * into datagrams differs by design (the SDK streams one per subsegment, we send a request's tree in one).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import { startXrayDaemon } from '../support/xray-daemon';

interface Doc {
  id: string;
  name: string;
  start_time: number;
  end_time?: number;
  trace_id?: string;
  parent_id?: string;
  type?: string;
  subsegments?: Doc[];
  cause?: { id?: string; working_directory?: string; exceptions: { type: string; message: string; remote: boolean; stack: unknown[]; id: string }[] };
  [key: string]: unknown;
}

interface Recorded {
  datagrams: number;
  /** Every subsegment, with the id of its parent and the trace of its document. */
  entries: { doc: Doc; parentId: string; traceId: string | undefined }[];
  /** `x-amzn-trace-id` of each request the stub received. */
  traceHeaders: string[];
}

const stubHeaders: string[] = [];
let stub: http.Server;
let stubUrl: string;

/** The AWS and HTTP endpoints the work calls: S3 (path style), KMS (JSON 1.1) and two plain GETs. */
function answer(req: http.IncomingMessage, body: string, res: http.ServerResponse): void {
  const header = req.headers['x-amzn-trace-id'];
  if (typeof header === 'string') stubHeaders.push(header);
  const send = (status: number, headers: Record<string, string>, text: string) => {
    res.writeHead(status, { 'content-length': String(Buffer.byteLength(text)), ...headers });
    res.end(text);
  };
  const target = req.headers['x-amz-target'];
  if (req.method === 'GET' && req.url?.startsWith('/tenant-bucket/tenants/t1/doc')) {
    send(200, { 'x-amz-request-id': 'S3GET1', 'x-amz-id-2': 'EXT-ID-2', 'content-type': 'text/plain', etag: '"abc"' }, 'the bytes');
  } else if (req.method === 'PUT' && req.url?.startsWith('/tenant-bucket/tenants/t1/fault')) {
    send(500, { 'x-amz-request-id': 'S3PUT1', 'x-amz-id-2': 'EXT-ID-3', 'content-type': 'application/xml' },
      '<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>We encountered an internal error.</Message><RequestId>S3PUT1</RequestId></Error>');
  } else if (target === 'TrentService.GenerateDataKey') {
    send(200, { 'x-amzn-requestid': 'KMS1', 'content-type': 'application/x-amz-json-1.1' },
      JSON.stringify({ KeyId: 'arn:aws:kms:eu-west-1:123456789012:key/k', Plaintext: 'AAAA', CiphertextBlob: 'BBBB' }));
  } else if (target === 'TrentService.Decrypt') {
    send(400, { 'x-amzn-requestid': 'KMS2', 'content-type': 'application/x-amz-json-1.1' }, JSON.stringify({ __type: 'ThrottlingException', message: 'Rate exceeded' }));
  } else if (req.url?.startsWith('/keys/jwks.json')) {
    send(200, { 'content-type': 'application/json' }, '{"keys":[]}');
  } else {
    send(404, { 'content-type': 'text/plain' }, 'not found');
  }
  void body;
}

beforeAll(async () => {
  stub = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => answer(req, Buffer.concat(chunks).toString('utf8'), res));
  });
  await new Promise<void>((resolve) => stub.listen(0, '127.0.0.1', resolve));
  stubUrl = `http://127.0.0.1:${(stub.address() as { port: number }).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => stub.close(resolve));
});

async function record(mode: 'powertools' | 'ours', header: string): Promise<Recorded> {
  const daemon = await startXrayDaemon();
  stubHeaders.length = 0;
  const env = {
    PATH: process.env.PATH,
    AWS_REGION: 'eu-west-1',
    AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
    AWS_LAMBDA_FUNCTION_NAME: 'tenant-api-reference',
    LAMBDA_TASK_ROOT: path.resolve(__dirname, '../..'),
    AWS_XRAY_DAEMON_ADDRESS: daemon.address,
    AWS_XRAY_CONTEXT_MISSING: 'LOG_ERROR',
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    POWERTOOLS_SERVICE_NAME: 'tenant-api',
    POWERTOOLS_TRACER_CAPTURE_RESPONSE: 'false',
  };
  try {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [require.resolve('tsx/cli'), path.join(__dirname, 'support/xray-reference-runner.ts'), mode, stubUrl, header],
      { env, timeout: 60_000 },
    );
    expect(stdout).toContain('DONE');
  } finally {
    await daemon.close(200);
  }
  // Each datagram is the daemon's header line and one document (documents() throws otherwise).
  const docs = daemon.documents<Doc>();
  const entries: Recorded['entries'] = [];
  const visit = (doc: Doc, parentId: string, traceId: string | undefined) => {
    entries.push({ doc, parentId, traceId });
    for (const child of doc.subsegments ?? []) visit(child, doc.id, traceId);
  };
  for (const doc of docs) {
    expect(doc.type).toBe('subsegment');
    visit(doc, doc.parent_id!, doc.trace_id);
  }
  return { datagrams: docs.length, entries, traceHeaders: [...stubHeaders] };
}

/** What must match: everything but ids, times and the datagram cut. */
interface Node {
  name: string;
  fields: Record<string, unknown>;
  children: Node[];
}

/**
 * Where an exception was thrown: its first frame's file and line. Not the frame's label: V8 names the
 * same anonymous function differently in the two processes (`work` where the X-Ray SDK's dependencies are
 * loaded, `<anonymous>` without them); the parsing of frames is compared exactly in test/unit/core/xray.test.ts.
 */
function where(frame: unknown): { path?: string; line?: number } {
  const { path: file, line } = (frame ?? {}) as { path?: string; line?: number };
  return { path: file, line };
}

const BY_NATURE = new Set(['id', 'start_time', 'end_time', 'trace_id', 'parent_id', 'type', 'subsegments', 'cause']);

function treeOf(recorded: Recorded, facadeId: string): Node[] {
  const nameOf = new Map(recorded.entries.map((e) => [e.doc.id, e.doc.name]));
  const build = (parentId: string): Node[] =>
    recorded.entries
      .filter((e) => e.parentId === parentId)
      .sort((a, b) => a.doc.start_time - b.doc.start_time)
      .map(({ doc }) => {
        const fields: Record<string, unknown> = {};
        for (const [key, value] of Object.entries(doc)) if (!BY_NATURE.has(key)) fields[key] = value;
        if (doc.cause) {
          fields.cause = doc.cause.id
            ? { recorded_in: nameOf.get(doc.cause.id), exceptions: doc.cause.exceptions }
            : {
                working_directory: doc.cause.working_directory,
                exceptions: doc.cause.exceptions.map((x) => ({ type: x.type, message: x.message, remote: x.remote, frames: x.stack.length > 0, ...where(x.stack[0]) })),
              };
        }
        return { name: doc.name, fields, children: build(doc.id) };
      });
  return build(facadeId);
}

describe('the X-Ray documents of our emitter and of the X-Ray SDK (Powertools tracer), for the same work', () => {
  const root = `1-${Math.floor(Date.now() / 1000).toString(16)}-${randomBytes(12).toString('hex')}`;
  const facade = randomBytes(8).toString('hex');
  const header = `Root=${root};Parent=${facade};Sampled=1;Lineage=a87bd80c:0`;
  let reference: Recorded;
  let ours: Recorded;

  beforeAll(async () => {
    reference = await record('powertools', header);
    ours = await record('ours', header);
  }, 120_000);

  it('records the whole work in both, every subsegment in the invocation\'s trace', () => {
    // ## reference; postgres reference > nested step; failing step; outer rethrow > inner rethrow; S3 ×3 (the SDK's
    // client twice, the functions' own once); KMS ×2; two GETs.
    expect(reference.entries.length).toBe(13);
    expect(ours.entries.map((e) => e.doc.name).sort()).toEqual(reference.entries.map((e) => e.doc.name).sort());
    for (const { entries } of [reference, ours]) {
      for (const e of entries) if (e.traceId !== undefined) expect(e.traceId).toBe(root);
      expect(entries.filter((e) => e.parentId === facade).map((e) => e.doc.name)).toEqual(['## reference']);
    }
  });

  it('builds the same tree with the same names, attributes, flags and causes', () => {
    if (process.env.DUMP_TREE) console.log(JSON.stringify(treeOf(reference, facade), null, 1));
    expect(treeOf(ours, facade)).toEqual(treeOf(reference, facade));
  });

  it('has 16-hex ids, unique, and times in epoch seconds in order', () => {
    const ids = ours.entries.map((e) => e.doc.id);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{16}$/);
    expect(new Set(ids).size).toBe(ids.length);
    for (const { doc } of ours.entries) {
      expect(doc.end_time!).toBeGreaterThanOrEqual(doc.start_time);
      expect(Math.abs(doc.start_time - Date.now() / 1000)).toBeLessThan(120);
      expect(doc).not.toHaveProperty('in_progress');
    }
  });

  it('puts the trace header of each AWS call and outgoing request on it, naming that call\'s subsegment', () => {
    for (const recorded of [reference, ours]) {
      const calls = recorded.entries.filter((e) => e.doc.namespace === 'aws' || e.doc.namespace === 'remote');
      expect(recorded.traceHeaders).toHaveLength(calls.length);
      for (const e of calls) {
        const sent = recorded.traceHeaders.find((h) => h.includes(`Parent=${e.doc.id}`));
        expect(sent).toMatch(new RegExp(`^Root=${root};Parent=${e.doc.id};Sampled=1`));
      }
    }
    // The same headers otherwise, in the same order: the AWS calls pass the header's Lineage on, the others not.
    const shape = (headers: string[]) => headers.map((h) => h.replace(/Parent=[0-9a-f]{16}/, 'Parent=<id>'));
    expect(shape(ours.traceHeaders)).toEqual(shape(reference.traceHeaders));
    expect(shape(ours.traceHeaders).filter((h) => h.endsWith(';Lineage=a87bd80c:0'))).toHaveLength(5);
  });

  it('sends the whole request in one datagram where the SDK sends one per subsegment', () => {
    expect(reference.datagrams).toBe(reference.entries.length);
    expect(ours.datagrams).toBe(1);
  });
});
