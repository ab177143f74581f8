/**
 * Checks an answer of the API against the OpenAPI document the API serves: the status is documented for
 * the operation, a body is valid against that status's schema (JSON Schema 2020-12, as OpenAPI 3.1
 * says), errors are application/problem+json, and the headers the document marks required are there.
 * A request that matches no operation (an unknown path or method, a CORS preflight) must be answered
 * the way API.md says the server answers those: a 404 or 405 problem, or a 204 preflight.
 */
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { openApiDocument } from '../../../functions/platform/openapi-document';
import { routeList, type RouteSpec } from '../../../functions/routes';

type Schema = Record<string, unknown>;
interface DocResponse {
  readonly content?: Record<string, { schema: Schema }>;
  readonly headers?: Record<string, { $ref?: string; required?: boolean }>;
}
type Operation = { readonly operationId: string; readonly responses: Record<string, DocResponse> };
interface Document {
  readonly paths: Record<string, Record<string, Operation>>;
  readonly components: { headers: Record<string, { required?: boolean }> };
}

/** An answer as received, whatever client received it. */
export interface Answer {
  readonly status: number;
  header(name: string): string | null | undefined;
  readonly body: string;
}

type IdentifiedSpec = RouteSpec & { readonly id: string };

/** The document of the manifest and any test-only routes served beside it, with its compiled schemas. */
class Contract {
  private static nextId = 0;
  readonly document: Document;
  private readonly id = `https://api.tenant-sovereign.dev/openapi-${Contract.nextId++}.json`;
  // strict off: the document is not itself a schema; only its schemas are compiled, by JSON pointer.
  readonly ajv = addFormats(new Ajv2020({ strict: false, allErrors: true }));
  private readonly validators = new Map<string, ValidateFunction>();
  private readonly templates: { template: string; pattern: RegExp }[];

  constructor(routes: readonly IdentifiedSpec[]) {
    this.document = openApiDocument(routes) as unknown as Document;
    this.ajv.addSchema({ ...this.document, $id: this.id } as Schema);
    // Literal segments win over parameters (`/api/tenants` is not a tenant called "tenants").
    this.templates = Object.keys(this.document.paths)
      .sort((a, b) => a.split('{').length - b.split('{').length)
      .map((template) => ({
        template,
        pattern: new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}$`),
      }));
  }

  /** The document's path template for a request path, if any (query string ignored). */
  templateOf(requestPath: string): string | undefined {
    const path = requestPath.split('?')[0]!;
    return this.templates.find((t) => t.pattern.test(path))?.template;
  }

  validatorAt(...parts: string[]): ValidateFunction {
    const path = parts.map((p) => p.replaceAll('~', '~0').replaceAll('/', '~1')).join('/');
    let validate = this.validators.get(path);
    if (!validate) {
      validate = this.ajv.compile({ $ref: `${this.id}#/${path}` });
      this.validators.set(path, validate);
    }
    return validate;
  }
}

const contracts = new Map<string, Contract>();
function contractOf(extraRoutes: readonly IdentifiedSpec[]): Contract {
  const key = extraRoutes.map((r) => r.id).join(',');
  let contract = contracts.get(key);
  if (!contract) {
    contract = new Contract([...routeList, ...extraRoutes]);
    contracts.set(key, contract);
  }
  return contract;
}

/** True when the path is not valid percent-encoding: no operation can receive it, the server refuses it first. */
function undecodable(requestPath: string): boolean {
  try {
    decodeURIComponent(requestPath.split('?')[0]!);
    return false;
  } catch {
    return true;
  }
}

/** Every way `answer` to `method requestPath` departs from the document; empty when it conforms. */
export function violations(method: string, requestPath: string, answer: Answer, extraRoutes: readonly IdentifiedSpec[] = []): string[] {
  const contract = contractOf(extraRoutes);
  const { document } = contract;
  const where = `${method} ${requestPath.split('?')[0]} → ${answer.status}`;
  const template = undecodable(requestPath) ? undefined : contract.templateOf(requestPath);
  const operation = template ? document.paths[template]![method.toLowerCase()] : undefined;
  const contentType = (answer.header('content-type') ?? '').split(';')[0]!.trim();
  if (!operation) {
    if (method === 'OPTIONS' && answer.status === 204) return [];
    const refusals = undecodable(requestPath) ? [400, 404] : [404, 405];
    if (refusals.includes(answer.status) && contentType === 'application/problem+json') return [];
    return [`${where}: no operation in the document, and not the server's ${refusals.join('/')} problem or 204 preflight`];
  }
  const response = operation.responses[String(answer.status)];
  if (!response) return [`${where}: status not documented for ${operation.operationId} (documented: ${Object.keys(operation.responses).join(', ')})`];
  const found: string[] = [];
  for (const [name, h] of Object.entries(response.headers ?? {})) {
    const required = h.required ?? (h.$ref ? document.components.headers[h.$ref.split('/').pop()!]?.required : false);
    if (required && answer.header(name) == null) found.push(`${where}: required header ${name} missing`);
  }
  const media = Object.keys(response.content ?? {});
  if (media.length === 0) {
    if (answer.body !== '') found.push(`${where}: documented without a body, answered ${answer.body.length} characters`);
    return found;
  }
  if (!media.includes(contentType)) return [...found, `${where}: content-type ${contentType || '(none)'}, documented ${media.join(', ')}`];
  let body: unknown;
  try {
    body = JSON.parse(answer.body);
  } catch {
    return [...found, `${where}: body is not JSON`];
  }
  const validate = contract.validatorAt('paths', template!, method.toLowerCase(), 'responses', String(answer.status), 'content', contentType, 'schema');
  if (!validate(body)) {
    found.push(`${where}: body does not match ${operation.operationId}'s schema: ${contract.ajv.errorsText(validate.errors)}`);
  }
  return found;
}

/** Throws (failing the test that received it) when `answer` departs from the document. */
export function assertDocumented(method: string, requestPath: string, answer: Answer, extraRoutes: readonly IdentifiedSpec[] = []): void {
  const found = violations(method, requestPath, answer, extraRoutes);
  if (found.length > 0) throw new Error(`The answer is not the one the OpenAPI document describes:\n${found.join('\n')}`);
}

/**
 * `fetch` against the API at `baseUrl` that checks every answer against the document (of the manifest
 * and `extraRoutes`, test-only routes the server also serves) before returning it.
 */
export function documentedFetch(baseUrl: string, extraRoutes: readonly IdentifiedSpec[] = []): (path: string, init?: RequestInit) => Promise<Response> {
  return async (path, init = {}) => {
    const response = await fetch(`${baseUrl}${path}`, init);
    const body = await response.clone().text();
    assertDocumented(init.method ?? 'GET', path, { status: response.status, header: (n) => response.headers.get(n), body }, extraRoutes);
    return response;
  };
}
