/**
 * `Idempotency-Key` on the routes that create something (`idempotent: true` in the manifest). The first
 * successful answer to a key is stored (app.idempotency_keys, migration 0010) in the transaction that
 * did the work, with a fingerprint of the request; the same key again within 24 h replays that answer
 * (status, body, headers such as Location) and changes nothing more: no work, no meter, no audit event.
 * The same key with another request (another body, route or caller) → 409. A key whose request is still
 * running → 409 at once, with `Retry-After: 1`, rather than a wait that would hold a connection.
 * A refused request (any 4xx/5xx) stores nothing: its transaction rolled back, and the key may be used
 * again. Keys are per tenant on tenant routes and per platform operator on platform routes.
 *
 * The wrapper receives this module as a capability (`route(routes.x, work, { idempotency })`), passed by
 * the handlers of idempotent routes only, so that no other route's bundle carries it.
 */
import { createHash } from 'node:crypto';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import type { Tx } from './db';
import { BadRequestError, ConflictError } from './errors';
import { headerValues, type Reply } from './http';
import type { Pii, TenantKeys } from './pii';

import { IDEMPOTENCY_KEY_PATTERN, IDEMPOTENCY_TTL_HOURS } from './idempotency-key';

export { IDEMPOTENCY_KEY_PATTERN, IDEMPOTENCY_TTL_HOURS };
/** The response header that marks a replayed answer. */
export const REPLAYED_HEADER = 'idempotent-replayed';

/** A request that carries a key: what identifies the request and the key's scope. */
export interface IdempotentRequest {
  readonly key: string;
  /** SHA-256 of method, route, caller and canonical body. */
  readonly fingerprint: Buffer;
  /** The platform operator whose key it is; absent for a tenant route (the key is the tenant's). */
  readonly operatorId?: string;
}

/** A key in progress elsewhere: the caller retries shortly and then gets the replay. */
export class IdempotencyInProgressError extends ConflictError {
  override readonly headers = { 'Retry-After': '1' };
}

/**
 * The request's `Idempotency-Key`, or undefined without one. 400 when it breaks the rule or is sent more
 * than once (two values cannot name one request).
 */
export function idempotencyKeyOf(event: Pick<APIGatewayProxyEvent, 'headers'> & Partial<Pick<APIGatewayProxyEvent, 'multiValueHeaders'>>): string | undefined {
  const values = headerValues(event, 'idempotency-key');
  if (values.length === 0) return undefined;
  if (values.length > 1) throw new BadRequestError('Send one Idempotency-Key.');
  const key = values[0]!;
  if (!IDEMPOTENCY_KEY_PATTERN.test(key)) {
    throw new BadRequestError('The Idempotency-Key must be 1 to 255 printable ASCII characters without spaces.');
  }
  return key;
}

/** JSON with every object's keys sorted: equal bodies give equal text whatever the order sent. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** The fingerprint of a request: the same key may only ever stand for one of them. */
export function fingerprintOf(request: { method: string; routeId: string; callerId: string; body: unknown }): Buffer {
  return createHash('sha256')
    .update(canonicalJson([request.method, request.routeId, request.callerId, request.body ?? null]))
    .digest();
}

interface StoredRow {
  tenant_id: string;
  fingerprint: Buffer;
  status: number;
  headers: Record<string, string>;
  body: string | null;
  body_sealed: Buffer | null;
  live: boolean;
}

/** What a stored answer is opened with when its body is sealed: the keys of the row's tenant. */
export type KeysFor = (tenantId: string) => Promise<TenantKeys>;

/**
 * Takes the key for this transaction and answers the stored reply when there is one (to replay), or
 * undefined (go on with the work, then {@link rememberAnswer}). 409 when the key stands for another
 * request, or when a request with it is running now (its transaction holds the key's lock). An
 * expired answer is forgotten here. `tenantId` scopes a tenant route's key; platform keys are the
 * operator's (`request.operatorId`).
 */
export async function claimKey(tx: Tx, tenantId: string | undefined, request: IdempotentRequest, keysFor: KeysFor): Promise<Reply | undefined> {
  const scope = request.operatorId ? `operator:${request.operatorId}` : `tenant:${tenantId}`;
  // Non-blocking: a second request with the key does not queue behind the first's work (which may call
  // S3 or Cognito); it is told at once. The lock lasts until this transaction ends, when the answer is
  // committed (visible to the next claim) or rolled back (the key is free again).
  const [lock] = await tx<{ taken: boolean }[]>`
    select pg_try_advisory_xact_lock(hashtextextended(${`app.idempotency_keys ${scope} ${request.key}`}, 0)) as taken`;
  if (!lock?.taken) throw new IdempotencyInProgressError('A request with this Idempotency-Key is in progress; retry shortly.');
  const row = await storedAnswer(tx, tenantId, request);
  if (!row) return undefined;
  if (!row.live) {
    await tx`
      delete from app.idempotency_keys
       where tenant_id = ${row.tenant_id} and key = ${request.key}
         and operator_id is not distinct from ${request.operatorId ?? null} and expires_at <= now()`;
    return undefined;
  }
  return replayOf(row, request, keysFor);
}

/** The stored answer for the key, live or expired; undefined when none. */
async function storedAnswer(tx: Tx, tenantId: string | undefined, request: IdempotentRequest): Promise<StoredRow | undefined> {
  const rows = request.operatorId
    ? await tx<StoredRow[]>`
        select tenant_id, fingerprint, status, headers, body, body_sealed, expires_at > now() as live
          from app.idempotency_keys where operator_id = ${request.operatorId} and key = ${request.key}`
    : await tx<StoredRow[]>`
        select tenant_id, fingerprint, status, headers, body, body_sealed, expires_at > now() as live
          from app.idempotency_keys where tenant_id = ${tenantId!} and operator_id is null and key = ${request.key}`;
  return rows[0];
}

async function replayOf(row: StoredRow, request: IdempotentRequest, keysFor: KeysFor): Promise<Reply> {
  if (!row.fingerprint.equals(request.fingerprint)) {
    throw new ConflictError('This Idempotency-Key was already used with another request.');
  }
  const text = row.body_sealed ? (await keysFor(row.tenant_id)).decrypt('answer', row.body_sealed) : row.body;
  const body = text === null ? undefined : (JSON.parse(text) as unknown);
  return { status: row.status, body, headers: { ...row.headers, [REPLAYED_HEADER]: 'true' } };
}

/**
 * A platform route's second look after its work met a conflict: a concurrent request with the same key
 * may have committed the answer meanwhile (the work's conflict is then that request's creation). The
 * stored answer, or undefined.
 */
export async function committedAnswer(tx: Tx, request: IdempotentRequest, keysFor: KeysFor): Promise<Reply | undefined> {
  const row = await storedAnswer(tx, undefined, request);
  return row?.live ? replayOf(row, request, keysFor) : undefined;
}

/**
 * Stores `reply` for the key, in the transaction of the work (so the key exists exactly when the work
 * committed). With `keys`, the body is sealed under the tenant's data key (an answer with PII).
 */
export async function rememberAnswer(tx: Tx, tenantId: string, request: IdempotentRequest, reply: Reply, keys?: TenantKeys): Promise<void> {
  const json = reply.body === undefined ? null : JSON.stringify(reply.body);
  const sealed = keys && json !== null ? keys.encrypt('answer', json) : null;
  await tx`
    insert into app.idempotency_keys (tenant_id, operator_id, key, fingerprint, status, headers, body, body_sealed, expires_at)
    values (${tenantId}, ${request.operatorId ?? null}, ${request.key}, ${request.fingerprint}, ${reply.status},
            ${tx.json((reply.headers ?? {}) as never)}, ${sealed ? null : json}, ${sealed},
            now() + make_interval(hours => ${IDEMPOTENCY_TTL_HOURS}))`;
}


/**
 * The keys of a tenant, from its wrapped data key, read in `tx`: what a sealed stored answer is opened
 * and sealed with. Only routes that handle PII (and so were given `pii`) store sealed answers.
 */
export function keysIn(tx: Tx, pii: (() => Pii) | undefined): KeysFor {
  return async (tenantId) => {
    const [row] = await tx<{ data_key_ciphertext: Buffer | null }[]>`select data_key_ciphertext from app.tenants where id = ${tenantId}`;
    if (!row?.data_key_ciphertext || !pii) throw new ConflictError('The answer of this Idempotency-Key can no longer be read.');
    return pii().tenantKeys(tenantId, row.data_key_ciphertext);
  };
}

/** A request that carries a key, as the wrapper handles it (functions/core/handler.ts). */
export interface KeyedRequest {
  /** First in the request's (or the platform check's) transaction: the stored answer, or undefined. */
  claim(tx: Tx): Promise<Reply | undefined>;
  /** A platform route's second look after its work met a conflict ({@link committedAnswer}). */
  committed(tx: Tx): Promise<Reply | undefined>;
  /**
   * A tenant route's store function, made before the work: an answer with PII is sealed under keys
   * unwrapped now, since no KMS call may wait while the meter holds the tenant's counter row.
   */
  recorder(tx: Tx): Promise<(reply: Reply) => Promise<void>>;
  /** A platform route's store, in the control transaction that completes its work. */
  remember(tx: Tx, tenantId: string, reply: Reply, keys?: TenantKeys): Promise<void>;
}

/** What the request is: its route, caller, body, and its tenant (tenant routes) or operator (platform). */
export interface KeyedInput {
  readonly spec: { readonly method: string; readonly usesPii?: boolean };
  readonly routeId: string;
  readonly event: Parameters<typeof idempotencyKeyOf>[0];
  readonly callerId: string;
  readonly body: unknown;
  readonly tenantId?: string;
  readonly operatorId?: string;
  readonly pii?: () => Pii;
}

/** The request's key (400 when malformed) bound to its scope, or undefined without one. */
export function keyedRequest(input: KeyedInput): KeyedRequest | undefined {
  const key = idempotencyKeyOf(input.event);
  if (key === undefined) return undefined;
  const request: IdempotentRequest = {
    key,
    operatorId: input.operatorId,
    fingerprint: fingerprintOf({ method: input.spec.method, routeId: input.routeId, callerId: input.callerId, body: input.body }),
  };
  return {
    claim: (tx) => claimKey(tx, input.tenantId, request, keysIn(tx, input.pii)),
    committed: (tx) => committedAnswer(tx, request, keysIn(tx, input.pii)),
    recorder: async (tx) => {
      const keys = input.spec.usesPii ? await keysIn(tx, input.pii)(input.tenantId!) : undefined;
      return (reply) => rememberAnswer(tx, input.tenantId!, request, reply, keys);
    },
    remember: (tx, tenantId, reply, keys) => rememberAnswer(tx, tenantId, request, reply, keys),
  };
}

/** The capability, as the handlers of idempotent routes pass it to the wrapper. */
export const idempotency = (): typeof keyedRequest => keyedRequest;
