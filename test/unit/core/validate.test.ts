/**
 * The one input validator: messages that name the field, 404 for a malformed path id, and the
 * standalone code generated for Lambda bundles agreeing with the validators compiled at runtime.
 */
import path from 'node:path';
import { BadRequestError, NotFoundError } from '../../../functions/core/errors';
import { INPUT_PARTS, inputSchemas } from '../../../functions/core/input-schema';
import { isMediaType } from '../../../functions/core/media-type';
import type { JsonSchema } from '../../../functions/core/route-spec';
import { validateInput } from '../../../functions/core/validate';
import { compileInputValidators } from '../../../functions/core/validate-compile';
import { routeList, routes } from '../../../functions/routes';
import { writeInputValidators } from '../../../lib/constructs/input-validators';

const ROOT = path.join(__dirname, '../../..');
const body = (value: Record<string, unknown>) => ({ params: {}, query: {}, body: value });
const example = routes.createDocument.body.examples[0];

/** A valid value of each path parameter the route declares (a document id, a platform route's tenant id). */

function refusal(run: () => unknown): Error {
  try {
    run();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a refusal');
}

/** A valid value (a UUID) for each id parameter a route declares. */
/** A valid value for each path parameter: a tenant slug for `tenantId`, a UUID for every resource id. */
const validParams = (params: Readonly<Record<string, unknown>> | undefined) =>
  Object.fromEntries(Object.keys(params ?? {}).map((name) => [name, name === 'tenantId' ? 'acme' : '6f1c2a9e-8d43-4b7a-9c1e-2f3a4b5c6d7e']));

describe('validateInput', () => {
  it('accepts the manifest example of every route that takes a body', () => {
    for (const route of routeList.filter((r) => r.body)) {
      const sample = (route.body!.examples as Record<string, unknown>[])[0]!;
      // Routes that take a body under a resource path get a valid id for each of their parameters.
      expect(() => validateInput(route.id, route, { ...body({ ...sample }), params: validParams(route.params) })).not.toThrow();
    }
  });

  it.each([
    ['a missing field', { name: 'a.pdf', contentType: 'application/pdf' }, 'sizeBytes is required.'],
    ['an unknown field', { ...example, colour: 'red' }, 'colour is not a known field.'],
    ['a string where an integer belongs', { ...example, sizeBytes: '1' }, 'sizeBytes must be integer.'],
    ['size 0', { ...example, sizeBytes: 0 }, 'sizeBytes must be >= 1.'],
    ['a 256-character name', { ...example, name: 'n'.repeat(256) }, 'name must NOT have more than 255 characters.'],
    ['a name of spaces only', { ...example, name: '   ' }, 'name does not have the expected format.'],
    ['a name with a control character', { ...example, name: 'a\u0007b' }, 'name does not have the expected format.'],
    ['a content type that is no media type', { ...example, contentType: 'pdf' }, 'contentType does not have the expected format.'],
  ])('answers %s with a 400 naming the field', (_name, value, message) => {
    const error = refusal(() => validateInput('createDocument', routes.createDocument, body(value)));
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error.message).toBe(message);
  });

  it('names enum values and never echoes a huge value', () => {
    const huge = 'k'.repeat(10_000);
    const metric = refusal(() => validateInput('recordUsageEvent', routes.recordUsageEvent, body({ metric: 'x', quantity: 1, idempotencyKey: 'k' })));
    expect(metric.message).toBe('metric must be one of ai_tokens.');
    const key = refusal(() => validateInput('recordUsageEvent', routes.recordUsageEvent, body({ metric: 'ai_tokens', quantity: 1, idempotencyKey: huge })));
    expect(key.message).toMatch(/^idempotencyKey /);
    expect(key.message.length).toBeLessThan(100);
  });

  it('names a query parameter as such', () => {
    const error = refusal(() => validateInput('listDocuments', routes.listDocuments, { params: {}, query: { limit: '101' }, body: {} }));
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error.message).toBe('query parameter limit must be <= 100.');
  });

  it('answers a path id that breaks its schema with 404, before looking at the body', () => {
    const error = refusal(() => validateInput('getDocument', routes.getDocument, { params: { documentId: '../etc' }, query: {}, body: {} }));
    expect(error).toBeInstanceOf(NotFoundError);
  });
});

describe('the media-type rule', () => {
  it('is the pattern of the contentType schema and the check of storage', () => {
    expect(routes.createDocument.body.properties.contentType.pattern).toBeDefined();
    for (const [value, ok] of [['application/pdf', true], ['text/plain; charset=utf-8', true], ['pdf', false], ['a/b\r\nx: y', false]] as const) {
      expect({ value, ok: isMediaType(value) }).toEqual({ value, ok });
      const result = refusalOrNull(() => validateInput('createDocument', routes.createDocument, body({ ...example, contentType: value })));
      expect({ value, ok: result === null }).toEqual({ value, ok });
    }
  });
});

function refusalOrNull(run: () => unknown): Error | null {
  try {
    run();
    return null;
  } catch (error) {
    return error as Error;
  }
}

/** Valid and invalid samples of one schema, derived from its declared properties. */
function samples(schema: JsonSchema, valid: Record<string, unknown>): unknown[] {
  const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
  const out: unknown[] = [valid, {}, { ...valid, unknown: 1 }, [], 'text', null];
  for (const [name, property] of Object.entries(properties)) {
    const { [name]: _dropped, ...without } = valid;
    out.push(without);
    for (const bad of ['', 'x'.repeat(600), 0, -1, 1.5, '1', '20', '0', 'abc', 1e20, true, null, {}, '00000000-0000-4000-8000-000000000000']) {
      out.push({ ...valid, [name]: bad });
    }
    if (property.enum) for (const v of property.enum as unknown[]) out.push({ ...valid, [name]: v });
  }
  return out;
}

describe('the standalone validators of a Lambda bundle', () => {
  it('agree with the runtime-compiled ones on valid and invalid input, for every route', () => {
    let checked = 0;
    for (const route of routeList) {
      const runtime = compileInputValidators(route);
      const generated = writeInputValidators(ROOT, route.id, route);
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const standalone = require(path.join(generated.dir, 'index.js')) as Record<string, ((d: unknown) => boolean) | string>;
      expect(standalone.routeId).toBe(route.id);
      const schemas = inputSchemas(route);
      for (const part of INPUT_PARTS) {
        const schema = schemas[part];
        expect({ route: route.id, part, generated: typeof standalone[part] }).toEqual({ route: route.id, part, generated: schema ? 'function' : 'undefined' });
        if (!schema) continue;
        const valid = part === 'body' ? ((schema.examples as Record<string, unknown>[])[0] ?? {}) : part === 'params' ? validParams(route.params) : {};
        const outcomes = new Set<boolean>();
        for (const sample of samples(schema, valid)) {
          const a = runtime[part]!(structuredClone(sample));
          const b = (standalone[part] as (d: unknown) => boolean)(structuredClone(sample));
          expect({ route: route.id, part, sample, agree: a === b }).toEqual({ route: route.id, part, sample, agree: true });
          outcomes.add(a);
          checked++;
        }
        // Each part saw both answers, so agreement is not vacuous.
        expect({ route: route.id, part, outcomes: [...outcomes].sort() }).toEqual({ route: route.id, part, outcomes: [false, true] });
      }
    }
    expect(checked).toBeGreaterThan(100);
  });
});
