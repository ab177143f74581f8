/**
 * The deployed audit sealer, run on a schedule (lib/constructs/audit-anchor.ts): it chains the committed
 * audit events (`app.seal_audit_events()`, migration 0008) as the `app_sealer` login, then writes every
 * tenant's chain head to an S3 bucket with object lock, where nobody with database access (an owner
 * included) can change or delete it before its retention ends. An edit, a deletion or a reorder made in
 * the database afterwards, even one that recomputes the whole chain, no longer ends at an anchored head:
 * `npm run audit:verify` and the anchors together tell it.
 *
 * An anchor holds, per tenant: the tenant id, the last sealed event's sequence number, id and hash, and
 * when it was sealed. No actor, action, detail or any other field of the events; no PII.
 */
import { S3Client } from '../core/aws-s3';
import { AWS_MAX_ATTEMPTS, AWS_REQUEST_HANDLER } from '../core/aws-timeouts';
import { config, required } from '../core/config';
import { sql as containerSql, type Sql } from '../core/db';
import { captureClient, log } from '../core/observability';

/** The head of one tenant's chain: its last sealed link. */
export interface ChainHead {
  readonly tenantId: string;
  readonly seq: number;
  readonly eventId: string;
  /** SHA-256 of the link (audit-chain-v1), lower-case hex. */
  readonly hash: string;
  readonly sealedAt: string;
}

/** One object written to the anchor bucket. */
export interface AnchorDocument {
  readonly format: 'audit-chain-heads-v1';
  readonly anchoredAt: string;
  readonly heads: readonly ChainHead[];
}

/** What one run did. */
export interface AnchorRun {
  readonly sealed: number;
  readonly tenants: number;
  readonly key: string;
}

/** Chains every committed, unsealed event; returns how many it chained. */
export async function sealChains(db: Sql): Promise<number> {
  const [row] = await db<{ sealed: number }[]>`select app.seal_audit_events()::int as sealed`;
  return row?.sealed ?? 0;
}

/**
 * The head of every tenant's chain. A skip scan over the chain's primary key (tenant_id, seq): one index
 * probe per tenant, however long the chains are.
 */
export async function chainHeads(db: Sql): Promise<ChainHead[]> {
  const rows = await db<{ tenant_id: string; seq: string; event_id: string; hash: string; sealed_at: Date }[]>`
    with recursive tenants(tenant_id) as (
      (select tenant_id from app.audit_chain order by tenant_id limit 1)
      union all
      select (select c.tenant_id from app.audit_chain c where c.tenant_id > t.tenant_id order by c.tenant_id limit 1)
        from tenants t where t.tenant_id is not null
    )
    select h.tenant_id, h.seq::text, h.event_id::text, encode(h.hash, 'hex') as hash, h.sealed_at
      from tenants t
      cross join lateral (
        select c.tenant_id, c.seq, c.event_id, c.hash, c.sealed_at from app.audit_chain c
         where c.tenant_id = t.tenant_id order by c.seq desc limit 1
      ) h
     where t.tenant_id is not null
     order by h.tenant_id`;
  return rows.map((r) => ({ tenantId: r.tenant_id, seq: Number(r.seq), eventId: r.event_id, hash: r.hash, sealedAt: r.sealed_at.toISOString() }));
}

/** `audit-heads/YYYY/MM/DD/<ISO time>.json`: one object per run, listed by day. */
export function anchorKey(at: Date): string {
  const iso = at.toISOString();
  return `audit-heads/${iso.slice(0, 4)}/${iso.slice(5, 7)}/${iso.slice(8, 10)}/${iso}.json`;
}

/**
 * Seals, then writes the heads to `bucket` (whose default retention locks the object). The checksum
 * is required by S3 for a write to an object-locked bucket.
 */
export async function sealAndAnchor(db: Sql, s3: S3Client, bucket: string, now: () => Date = () => new Date()): Promise<AnchorRun> {
  const sealed = await sealChains(db);
  const heads = await chainHeads(db);
  const at = now();
  const document: AnchorDocument = { format: 'audit-chain-heads-v1', anchoredAt: at.toISOString(), heads };
  const key = anchorKey(at);
  await s3.putObject({
    Bucket: bucket,
    Key: key,
    Body: JSON.stringify(document),
    ContentType: 'application/json',
    ChecksumAlgorithm: 'SHA256',
  });
  return { sealed, tenants: heads.length, key };
}

let containerS3: S3Client | undefined;

/** The scheduled run (an EventBridge rule's target). Fails loudly: a missed anchor is retried and alarmed. */
export async function handler(): Promise<AnchorRun> {
  const { aws, audit } = config();
  const bucket = required(audit.anchorBucket, 'AUDIT_ANCHOR_BUCKET');
  containerS3 ??= captureClient(
    new S3Client({ region: aws.region, endpoint: aws.endpoint, requestHandler: AWS_REQUEST_HANDLER, maxAttempts: AWS_MAX_ATTEMPTS }),
  );
  const run = await sealAndAnchor(containerSql(), containerS3, bucket);
  log().info('audit chains anchored', { sealed: run.sealed, tenants: run.tenants, key: run.key });
  return run;
}
