/**
 * Compiles a route's input validators with ajv. Never part of a Lambda bundle: there, the same
 * validators arrive as standalone code generated at bundling time (`standaloneInputValidators`, called by
 * lib/constructs/input-validators.ts), because compiling at cold start costs ~124 KB of bundle and
 * 50–80 ms. Tests and the local server (ts-jest, tsx) compile at first use instead.
 */
import Ajv, { type ValidateFunction } from 'ajv';
import standaloneCode from 'ajv/dist/standalone';
import { INPUT_PARTS, inputSchemas, type InputPart } from './input-schema';
import type { RouteSpec } from './route-spec';

/** The compiled validators of one route, by part; a part the route does not declare is absent. */
export type InputValidators = Partial<Record<InputPart, ValidateFunction>>;

/**
 * The ajv instances of the two kinds of input: JSON bodies are validated as sent (a `"1"` is no
 * integer), while query and path parameters are strings on the wire and are coerced to their declared
 * type (`limit=20` is an integer). `examples` and `description` are annotations, known to both.
 */
function instances(source: boolean): { body: Ajv; strings: Ajv } {
  const common = { strict: true, allErrors: false, code: { source, esm: false } } as const;
  return { body: new Ajv({ ...common }), strings: new Ajv({ ...common, coerceTypes: true }) };
}

const ajvOf = (part: InputPart, a: { body: Ajv; strings: Ajv }): Ajv => (part === 'body' ? a.body : a.strings);

/** Compiles the validators of `spec` now (tests, local server). */
export function compileInputValidators(spec: RouteSpec): InputValidators {
  const a = instances(false);
  const out: InputValidators = {};
  for (const [part, schema] of Object.entries(inputSchemas(spec)) as [InputPart, object][]) {
    out[part] = ajvOf(part, a).compile(schema);
  }
  return out;
}

/**
 * The standalone CommonJS modules of a route's validators, by file name: `index.js` exports
 * `{ routeId, body?, query?, params? }`, built from the same schemas and options as
 * `compileInputValidators`. They `require` only ajv's small runtime helpers.
 */
export function standaloneInputValidators(routeId: string, spec: RouteSpec): Record<string, string> {
  const a = instances(true);
  const schemas = inputSchemas(spec);
  const files: Record<string, string> = {};
  const lines = ['"use strict";', `exports.routeId = ${JSON.stringify(routeId)};`];
  for (const part of INPUT_PARTS) {
    const schema = schemas[part];
    if (!schema) continue;
    const ajv = ajvOf(part, a);
    ajv.addSchema(schema, part);
    files[`${part}.js`] = standaloneCode(ajv, { [part]: part });
    lines.push(`exports.${part} = require("./${part}.js").${part};`);
  }
  files['index.js'] = `${lines.join('\n')}\n`;
  return files;
}
