/**
 * The same traced work, recorded either through Powertools' tracer and the X-Ray SDK (`powertools`, the
 * reference: what functions/core/observability.ts used before functions/core/xray.ts) or through
 * observability.ts as it is (`ours`). Run in a process of its own whose environment the test sets as
 * Lambda sets it (the X-Ray SDK reads it when it loads); the work calls the AWS stub at argv[3], with the
 * trace header argv[4]. Each mode sends its subsegments to the daemon the environment names.
 */
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import * as observability from '../../../functions/core/observability';
import { S3Client as OwnS3Client } from '../../../functions/core/aws-s3';
import { kmsClient } from '../../../functions/core/pii';

type Mode = 'powertools' | 'ours';

interface Span {
  annotate(key: string, value: string | number | boolean): void;
  fail(error: unknown): void;
}

interface Tools {
  traced<T>(name: string, work: (span: Span) => Promise<T>): Promise<T>;
  captureClient<C>(client: C): C;
  fetch(url: string): Promise<Response>;
}

/** Powertools' tracer driven as observability.ts drove it before its own emitter. */
async function powertools(): Promise<Tools> {
  const { Tracer } = await import('@aws-lambda-powertools/tracer');
  const tracer = new Tracer({ serviceName: 'tenant-api' });
  return {
    async traced(name, work) {
      const parent = tracer.getSegment();
      if (!parent) return work({ annotate: () => undefined, fail: () => undefined });
      const subsegment = parent.addNewSubsegment(name);
      tracer.setSegment(subsegment);
      try {
        return await work({
          annotate: (key, value) => subsegment.addAnnotation(key, value),
          fail: (error) => subsegment.addError(error instanceof Error ? error : new Error(String(error))),
        });
      } catch (error) {
        subsegment.addError(error as Error);
        throw error;
      } finally {
        subsegment.close();
        tracer.setSegment(parent);
      }
    },
    captureClient: (client) => tracer.captureAWSv3Client(client),
    // Powertools instruments `fetch` itself (undici's diagnostics channels).
    fetch: (url) => fetch(url),
  };
}

async function ours(): Promise<Tools> {
  return { traced: observability.traced, captureClient: observability.captureClient, fetch: (url) => observability.tracedFetch(url) };
}

const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };

/** The work both modes record: nested subsegments, annotations, failures, AWS calls, outgoing HTTP. */
async function work(tools: Tools, stub: string): Promise<void> {
  const s3 = tools.captureClient(new S3Client({ region: 'eu-west-1', endpoint: stub, forcePathStyle: true, credentials, maxAttempts: 1 }));
  const kms = tools.captureClient(kmsClient({ region: 'eu-west-1', endpoint: stub, credentials, maxAttempts: 1 }));
  // The functions' own S3 client (aws-s3.ts), as storage and the audit sealer use it.
  const ownS3 = tools.captureClient(new OwnS3Client({ region: 'eu-west-1', endpoint: stub, forcePathStyle: true, credentials, maxAttempts: 1 }));
  await tools.traced('## reference', async (span) => {
    span.annotate('route', 'reference');
    span.annotate('ColdStart', true);
    await tools.traced('postgres reference', async (inner) => {
      inner.annotate('rows', 3);
      await tools.traced('nested step', async () => undefined);
    });
    await tools.traced('failing step', async () => {
      throw new TypeError('the step failed');
    }).catch(() => undefined);
    // The same error through two subsegments: the outer one only points at the inner one's record.
    await tools.traced('outer rethrow', () =>
      tools.traced('inner rethrow', async () => {
        throw new RangeError('thrown once, recorded once');
      }),
    ).catch(() => undefined);
    await s3.send(new GetObjectCommand({ Bucket: 'tenant-bucket', Key: 'tenants/t1/doc' })).then((out) => out.Body?.transformToString());
    await s3.send(new PutObjectCommand({ Bucket: 'tenant-bucket', Key: 'tenants/t1/fault', Body: 'x' })).catch(() => undefined);
    await ownS3.getObject({ Bucket: 'tenant-bucket', Key: 'tenants/t1/doc' }).then((out) => out.Body?.transformToString());
    await kms.call('GenerateDataKey', { KeyId: 'alias/pii', KeySpec: 'AES_256' });
    await kms.call('Decrypt', { CiphertextBlob: 'AAAA' }).catch(() => undefined);
    await tools.fetch(`${stub}/keys/jwks.json?cache=no`).then((response) => response.text());
    await tools.fetch(`${stub}/missing`).then((response) => response.text());
    span.annotate('status', 500);
    span.fail(new Error('the request failed'));
  });
}

async function main(): Promise<void> {
  const mode = process.argv[2] as Mode;
  const stub = process.argv[3]!;
  process.env._X_AMZN_TRACE_ID = process.argv[4]!;
  const tools = mode === 'powertools' ? await powertools() : await ours();
  await work(tools, stub);
  // Datagrams are sent after the work returns.
  await new Promise((resolve) => setTimeout(resolve, 200));
  process.stdout.write('DONE\n');
}

main().catch((error: unknown) => {
  process.stderr.write(`runner failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(2);
});
