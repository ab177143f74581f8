/**
 * `npm run bench:storage`: what tenant scoping costs.
 *  1. STS calls for 1,000 warm operations spread over 10 tenants (target: 10, one per tenant).
 *  2. Presign p50 in µs with scoped credentials (through the tenant cache) against an unscoped client
 *     with static keys, measured in the same run, interleaved (target ratio ≤ 1.1).
 * Starts its own moto_server (or uses AWS_ENDPOINT_URL) and provisions the bucket and role in it.
 * Prints its section and rewrites it in BENCHMARKS.md (every run is full size: there is no smaller one).
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { StsClient } from '../../functions/core/aws-sts';
import { provisionStorage } from '../../bin/stack/aws';
import { startEmulator } from '../../bin/stack/moto';
import { createTenantStorage } from '../../functions/core/storage';
import { contentDisposition, documentKey } from '../../functions/core/storage-names';
import { benchLog, publishSection, run } from './support/cli';

const HEADING = '## Storage (npm run bench:storage)';
const log = benchLog('bench:storage');

const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };
const region = 'us-east-1';

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main(): Promise<void> {
  const started = new Date();
  log(`starting the emulator (${process.env.AWS_ENDPOINT_URL ? 'AWS_ENDPOINT_URL' : 'moto_server'})`);
  const emulator = await startEmulator({ endpoint: process.env.AWS_ENDPOINT_URL });
  try {
    const { bucket, roleArn } = await provisionStorage({
      endpoint: emulator.endpoint,
      region,
      bucket: 'tenant-documents-bench',
      roleName: 'tenant-access-bench',
      credentials,
    });
    const sts = new StsClient({ region, endpoint: emulator.endpoint, credentials });
    let stsCalls = 0;
    sts.middlewareStack.add(
      (next) => async (args) => {
        stsCalls++;
        return next(args);
      },
      { step: 'build', name: 'countStsCalls' },
    );
    const provider = createTenantStorage({ bucket, roleArn, region, endpoint: emulator.endpoint, sts });
    const tenants = Array.from({ length: 10 }, (_, i) => ({ id: `bench-tenant-${i}`, user: randomUUID() }));

    log('1,000 warm operations over 10 tenants');
    // 1. 1,000 operations round-robin over 10 tenants: HEAD (a real S3 request) and presigned GETs.
    const documentId = randomUUID();
    const opsStart = performance.now();
    for (let i = 0; i < 1000; i++) {
      const tenant = tenants[i % tenants.length]!;
      const docs = provider.forTenant(tenant.id, tenant.user);
      if (i % 2 === 0) await docs.head(documentId);
      else await docs.presignDownload(documentId, { fileName: 'report.pdf' });
    }
    const opsMs = performance.now() - opsStart;

    // 2. Presign latency, scoped (cache lookup + session-token URL) vs an unscoped client, interleaved.
    const unscoped = new S3Client({
      region,
      endpoint: emulator.endpoint,
      forcePathStyle: true,
      credentials,
      requestChecksumCalculation: 'WHEN_REQUIRED',
    });
    const tenant = tenants[0]!;
    const key = documentKey(tenant.id, documentId);
    const disposition = contentDisposition('report.pdf');
    const scopedGet = () => provider.forTenant(tenant.id, tenant.user).presignDownload(documentId, { fileName: 'report.pdf' });
    const unscopedGet = () =>
      getSignedUrl(unscoped, new GetObjectCommand({ Bucket: bucket, Key: key, ResponseContentDisposition: disposition }), {
        expiresIn: 900,
      });
    const scopedPut = () =>
      provider.forTenant(tenant.id, tenant.user).presignUpload(documentId, { contentType: 'application/pdf', sizeBytes: 1000 });
    const unscopedPut = () =>
      getSignedUrl(unscoped, new PutObjectCommand({ Bucket: bucket, Key: key, ContentType: 'application/pdf', ContentLength: 1000 }), {
        expiresIn: 900,
        signableHeaders: new Set(['content-type', 'content-length']),
      });

    log('presign latency: 500 warm-up pairs, then 5,000 interleaved pairs, GET and PUT');
    const rows: string[] = [];
    const ratios: number[] = [];
    for (const [label, scoped, baseline] of [
      ['presign GET', scopedGet, unscopedGet],
      ['presign PUT', scopedPut, unscopedPut],
    ] as const) {
      const samples = { scoped: [] as number[], baseline: [] as number[] };
      for (let i = 0; i < 500; i++) {
        await scoped();
        await baseline();
      }
      for (let i = 0; i < 5000; i++) {
        // Alternate the order so neither side always runs on a warmer cache.
        const pair = i % 2 === 0 ? ([['scoped', scoped], ['baseline', baseline]] as const) : ([['baseline', baseline], ['scoped', scoped]] as const);
        for (const [side, fn] of pair) {
          const t0 = performance.now();
          await fn();
          samples[side].push((performance.now() - t0) * 1000);
        }
      }
      samples.scoped.sort((a, b) => a - b);
      samples.baseline.sort((a, b) => a - b);
      const s50 = percentile(samples.scoped, 50);
      const b50 = percentile(samples.baseline, 50);
      ratios.push(s50 / b50);
      rows.push(
        `| ${label} p50 / p95 (µs) | ${s50.toFixed(0)} / ${percentile(samples.scoped, 95).toFixed(0)} | ${b50.toFixed(0)} / ${percentile(samples.baseline, 95).toFixed(0)} | ${(s50 / b50).toFixed(2)} | ≤ 1.1 |`,
      );
    }

    const ok = stsCalls === 10 && ratios.every((r) => r <= 1.1);
    const lines = [
      `Command: \`npm run bench:storage\` · run ${started.toISOString().replace(/:\d\d\.\d+Z$/, 'Z')} · Node ${process.version}, ` +
        `${os.availableParallelism()} shared cores, ${emulator.owned ? 'moto_server spawned by the bench on a free port' : `the emulator at \`AWS_ENDPOINT_URL\``}, ` +
        'bucket and tenant-access role provisioned by `bin/stack/aws.ts`.',
      '',
      'STS calls are counted by a middleware on the STS client (one per operation sent). Warm operations: 1,000 calls round-robin ' +
        'over 10 tenants, alternating `head` (a real HEAD request to the emulator) and `presignDownload`. Presign latency: 500 ' +
        'warm-up pairs, then 5,000 interleaved pairs (order alternated) of the scoped call, ' +
        '`storage.forTenant(…).presignDownload/presignUpload` (tenant cache lookup + signing with the STS session\'s credentials, ' +
        'so a session token in the URL), against `getSignedUrl` on an unscoped `S3Client` with static keys for the same key and ' +
        'options; timed on the client, whole call, in µs.',
      '',
      '| measure | scoped (tenant cache) | baseline (unscoped client, same run) | ratio | target |',
      '| --- | --- | --- | --- | --- |',
      `| STS calls for 1,000 warm operations over 10 tenants | ${stsCalls} | 10 (one per tenant) | ${(stsCalls / 10).toFixed(2)} | 1.00 |`,
      ...rows,
      '',
      `1,000 operations took ${opsMs.toFixed(0)} ms (half of them HEAD requests to the emulator). ` +
        `${ok ? 'Both targets pass.' : '**A target is missed.**'} Absolute times are noise on this shared machine (1-minute load ` +
        `average ${os.loadavg()[0]!.toFixed(1)} at the end); the ratio is measured within one run.`,
    ];
    await publishSection(HEADING, lines.join('\n'), true, log, 'full size');
    process.stdout.write(`\nstorage bench: ${ok ? 'within targets' : 'OUTSIDE TARGETS'}\n`);
    process.exitCode = ok ? 0 : 1;
  } finally {
    await emulator.stop();
  }
}

run(main);
