/**
 * The Idempotency-Key rule, the canonical body and the fingerprint (functions/core/idempotency.ts), and
 * how the manifest declares the header: every create takes it, and the OpenAPI document lists it with
 * its 400 and 409.
 */
import { canonicalJson, fingerprintOf, idempotencyKeyOf } from '../../../functions/core/idempotency';
import { BadRequestError } from '../../../functions/core/errors';
import { openApiDocument } from '../../../functions/platform/openapi-document';
import { routeList } from '../../../functions/routes';

const event = (headers: Record<string, string>, multi?: Record<string, string[]>) => ({ headers, multiValueHeaders: multi ?? {} });

describe('idempotencyKeyOf', () => {
  it('reads the header in any case, and answers undefined without one', () => {
    expect(idempotencyKeyOf(event({ 'Idempotency-Key': 'abc-123' }))).toBe('abc-123');
    expect(idempotencyKeyOf(event({ 'idempotency-key': '~!{}' }))).toBe('~!{}');
    expect(idempotencyKeyOf(event({ other: 'x' }))).toBeUndefined();
  });

  it.each([
    ['empty', ''],
    ['a space', 'a b'],
    ['256 characters', 'k'.repeat(256)],
    ['a non-ASCII character', 'clé'],
    ['a tab', 'a\tb'],
  ])('refuses a key with %s (400)', (_name, key) => {
    expect(() => idempotencyKeyOf(event({ 'idempotency-key': key }))).toThrow(BadRequestError);
  });

  it('accepts 255 characters', () => {
    expect(idempotencyKeyOf(event({ 'idempotency-key': 'k'.repeat(255) }))).toHaveLength(255);
  });

  it('refuses a key sent twice (400)', () => {
    expect(() => idempotencyKeyOf(event({ 'idempotency-key': 'a' }, { 'Idempotency-Key': ['a', 'b'] }))).toThrow(BadRequestError);
  });
});

describe('the request fingerprint', () => {
  const base = { method: 'POST', routeId: 'createDocument', callerId: 'u1', body: { name: 'a', sizeBytes: 1 } };

  it('is the same for the same body with its keys in another order', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: 3 }] })).toBe('{"a":[{"c":3,"d":2}],"b":1}');
    expect(fingerprintOf({ ...base, body: { sizeBytes: 1, name: 'a' } }).equals(fingerprintOf(base))).toBe(true);
  });

  it.each([
    ['body', { body: { name: 'b', sizeBytes: 1 } }],
    ['route', { routeId: 'createMember' }],
    ['caller', { callerId: 'u2' }],
    ['method', { method: 'PUT' }],
  ])('differs for another %s', (_name, change) => {
    expect(fingerprintOf({ ...base, ...change }).equals(fingerprintOf(base))).toBe(false);
  });
});

describe('the manifest and OpenAPI', () => {
  it('declares every POST route idempotent', () => {
    const posts = routeList.filter((r) => r.method === 'POST');
    expect(posts.length).toBeGreaterThan(0);
    expect(posts.filter((r) => !r.idempotent).map((r) => r.id)).toEqual([]);
  });

  it('lists the Idempotency-Key header and its 400 and 409 on each idempotent operation, and on no other', () => {
    const paths = openApiDocument().paths as Record<string, Record<string, { parameters: { name: string; in: string }[]; responses: Record<string, unknown> }>>;
    for (const route of routeList) {
      const operation = paths[route.path]![route.method.toLowerCase()]!;
      const header = operation.parameters.find((p) => p.in === 'header' && p.name === 'Idempotency-Key');
      if (route.idempotent) {
        expect(header).toBeDefined();
        expect(Object.keys(operation.responses)).toEqual(expect.arrayContaining(['400', '409']));
      } else {
        expect(header).toBeUndefined();
      }
    }
  });
});
