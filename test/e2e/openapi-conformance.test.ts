/**
 * The checker every e2e answer goes through (support/openapi-conformance.ts) refuses what the document
 * does not describe: without these, a checker that passes everything would look the same as a green run.
 */
import { violations, type Answer } from './support/openapi-conformance';

const id = 'c0a8012e-6f1c-4c1e-9a57-3f0d6f3b2a10';
const answer = (status: number, body: unknown, headers: Record<string, string> = {}): Answer => {
  const all: Record<string, string> = { 'x-request-id': id, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...headers };
  return { status, header: (name) => all[name.toLowerCase()] ?? null, body: body === undefined ? '' : JSON.stringify(body) };
};
const problem = (status: number) => ({ type: 'about:blank', title: 'x', status, detail: 'x', instance: id });
const json = { 'content-type': 'application/json' };
const problemJson = { 'content-type': 'application/problem+json' };

describe('the OpenAPI conformance check of an answer', () => {
  it('accepts a documented status with a body valid against its schema', () => {
    expect(violations('GET', '/health', answer(200, { status: 'ok' }, json))).toEqual([]);
    expect(violations('POST', '/api/acme/usage-events', answer(409, problem(409), problemJson))).toEqual([]);
  });

  it('refuses a status the operation does not document', () => {
    expect(violations('GET', '/health', answer(409, problem(409), problemJson))).toEqual([expect.stringContaining('status not documented')]);
    expect(violations('GET', '/api/acme/documents?limit=2', answer(500, problem(500), problemJson))).toEqual([expect.stringContaining('status not documented')]);
  });

  it('refuses a body with a field the schema does not list, and an error that is not problem+json', () => {
    expect(violations('GET', '/health', answer(200, { status: 'ok', extra: 1 }, json))).toEqual([expect.stringContaining('body does not match')]);
    expect(violations('GET', '/api/acme/billing', answer(403, problem(403), json))).toEqual([expect.stringContaining('content-type application/json')]);
  });

  it('refuses an answer without a required header', () => {
    const created = answer(201, {}, json);
    expect(violations('POST', '/api/acme/documents', created)).toEqual(expect.arrayContaining([expect.stringContaining('required header Location missing')]));
  });

  it("accepts only the server's 404/405 problem or a 204 preflight where no operation matches", () => {
    expect(violations('GET', '/api/acme/nothing', answer(404, problem(404), problemJson))).toEqual([]);
    expect(violations('OPTIONS', '/api/acme/documents', answer(204, undefined))).toEqual([]);
    expect(violations('GET', '/api/acme/nothing', answer(200, {}, json))).toEqual([expect.stringContaining('no operation')]);
  });
});
