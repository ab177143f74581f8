/**
 * The input of a route as JSON Schemas, built from its manifest entry alone: the JSON body as it is,
 * and the query and path parameters (strings on the wire) as objects of their declared properties.
 * The validator (validate.ts), its build-time standalone code and the tests all start from here.
 */
import type { JsonSchema, RouteSpec } from './route-spec';

/** The three parts of a request's input that the manifest describes. */
export type InputPart = 'body' | 'query' | 'params';
export const INPUT_PARTS: readonly InputPart[] = ['body', 'query', 'params'];

/** The schema of each part a route declares (absent parts are not validated). */
export function inputSchemas(spec: RouteSpec): Partial<Record<InputPart, JsonSchema>> {
  const out: Partial<Record<InputPart, JsonSchema>> = {};
  if (spec.body) out.body = spec.body;
  // Unknown query parameters are ignored, as API Gateway does; declared ones must match their schema.
  if (spec.query) out.query = { type: 'object', properties: spec.query };
  if (spec.params) {
    out.params = { type: 'object', properties: spec.params, required: Object.keys(spec.params), additionalProperties: false };
  }
  return out;
}

/** Path parameters of a path template other than `tenantId` (which the wrapper checks itself). */
export function pathParameterNames(path: string): string[] {
  return [...path.matchAll(/\{([A-Za-z0-9_]+)\}/g)].map((m) => m[1]!).filter((name) => name !== 'tenantId');
}
