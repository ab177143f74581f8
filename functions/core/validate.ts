/**
 * The one input validator: a request's body, query and path parameters against the schemas of its
 * manifest entry, before any transaction. A body or query that breaks its schema is a 400 naming the
 * field; a path parameter that breaks its schema names no resource of this tenant, so it is a 404.
 *
 * In a Lambda bundle the validators are ajv standalone code generated at bundling time for that one
 * route (lib/constructs/input-validators.ts aliases `@tenant/input-validators` to it and defines
 * `globalThis.__TENANT_STANDALONE_VALIDATORS__`, so the compiling branch and ajv itself are dropped from
 * the bundle). Everywhere else (tests, the local server) the same schemas are compiled at first use.
 */
import { BadRequestError, NotFoundError } from './errors';
import type { InputPart } from './input-schema';
import type { RouteSpec } from './route-spec';

declare global {
  // Set by the bundler's `define` in Lambda bundles only.
  // eslint-disable-next-line no-var
  var __TENANT_STANDALONE_VALIDATORS__: boolean | undefined;
}

/** What ajv reports of a failed validation (the part of `ErrorObject` used here). */
interface ValidationError {
  readonly keyword: string;
  readonly instancePath: string;
  readonly params: Record<string, unknown>;
  readonly message?: string;
}
type Validator = ((data: unknown) => boolean) & { errors?: ValidationError[] | null };
type Validators = Partial<Record<InputPart, Validator>>;

const loaded = new WeakMap<RouteSpec, Validators>();

function load(routeId: string, spec: RouteSpec): Validators {
  const validators: Validators =
    globalThis.__TENANT_STANDALONE_VALIDATORS__ === true
      ? standalone(routeId, require('@tenant/input-validators') as Validators & { routeId: string })
      : (require('./validate-compile') as typeof import('./validate-compile')).compileInputValidators(spec);
  loaded.set(spec, validators);
  return validators;
}

function standalone(routeId: string, generated: Validators & { routeId: string }): Validators {
  // A bundle holds the validators of the one route it serves; any other route would go unvalidated.
  if (generated.routeId !== routeId) throw new Error(`the bundled input validators are for ${generated.routeId}, not ${routeId}`);
  return generated;
}

/** A field name safe to show: its JSON path, dotted, printable and short. */
function fieldName(part: InputPart, error: ValidationError): string {
  const segments = error.instancePath.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  const named = error.params.missingProperty ?? error.params.additionalProperty;
  if (typeof named === 'string') segments.push(named);
  const path = segments.join('.').replace(/[^\x20-\x7e]/g, '?').slice(0, 64);
  if (part === 'query') return `query parameter ${path}`;
  return path === '' ? 'the body' : path;
}

/** A message that names the field and the rule, never the value (which may be huge or private). */
function describe(part: InputPart, error: ValidationError): string {
  const field = fieldName(part, error);
  switch (error.keyword) {
    case 'required':
      return `${field} is required.`;
    case 'additionalProperties':
      return `${field} is not a known field.`;
    case 'pattern':
      return `${field} does not have the expected format.`;
    case 'enum':
      return `${field} must be one of ${((error.params.allowedValues as unknown[]) ?? []).map(String).join(', ').slice(0, 200)}.`;
    default:
      return `${field} ${error.message ?? 'is not valid'}.`;
  }
}

/**
 * Validates `input` in place (query and path strings are converted to their declared types) and returns
 * it; throws BadRequestError (body, query) or NotFoundError (path parameters) on the first violation.
 */
export function validateInput<T extends Partial<Record<InputPart, unknown>>>(routeId: string, spec: RouteSpec, input: T): T {
  const validators = loaded.get(spec) ?? load(routeId, spec);
  // Path parameters first: a request for no resource of this tenant learns nothing about its body.
  for (const part of ['params', 'query', 'body'] as const) {
    const validate = validators[part];
    if (!validate || validate(input[part])) continue;
    if (part === 'params') throw new NotFoundError('Not found.');
    const first = validate.errors?.[0];
    throw new BadRequestError(first ? describe(part, first) : `The ${part} is not valid.`);
  }
  return input;
}
