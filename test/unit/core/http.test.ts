import { BadRequestError, NotFoundError, QuotaExceededError, UnauthorizedError } from '../../../functions/core/errors';
import { header, JsonText, MAX_BODY_BYTES, parseJsonBody, problem, toResult } from '../../../functions/core/http';

const event = (body: string | null, contentType?: string) => ({
  headers: contentType ? { 'Content-Type': contentType } : {},
  body,
  isBase64Encoded: false,
});

describe('parseJsonBody', () => {
  it('parses a JSON object sent as application/json', () => {
    expect(parseJsonBody(event('{"a":1}', 'application/json'))).toEqual({ a: 1 });
    expect(parseJsonBody(event('{"a":1}', 'application/json; charset=utf-8'))).toEqual({ a: 1 });
  });

  it('refuses another content type with 415', () => {
    expect(() => parseJsonBody(event('{"a":1}', 'text/plain'))).toThrow(expect.objectContaining({ status: 415 }));
    expect(() => parseJsonBody(event('{"a":1}'))).toThrow(expect.objectContaining({ status: 415 }));
  });

  it('refuses a body over 64 KiB with 413', () => {
    const big = JSON.stringify({ a: 'x'.repeat(MAX_BODY_BYTES) });
    expect(() => parseJsonBody(event(big, 'application/json'))).toThrow(expect.objectContaining({ status: 413 }));
    const fits = JSON.stringify({ a: 'x'.repeat(MAX_BODY_BYTES - 20) });
    expect(parseJsonBody(event(fits, 'application/json'))).toHaveProperty('a');
  });

  it.each(['{', 'null', '[1]', '"text"', '42', ''])('refuses %j with 400', (body) => {
    expect(() => parseJsonBody(event(body, 'application/json'))).toThrow(BadRequestError);
  });

  it('reads base64-encoded bodies', () => {
    const encoded = { headers: { 'content-type': 'application/json' }, body: Buffer.from('{"b":2}').toString('base64'), isBase64Encoded: true };
    expect(parseJsonBody(encoded)).toEqual({ b: 2 });
  });
});

describe('responses', () => {
  it('maps typed errors to problem+json with the request id and no internals', () => {
    const result = problem(new NotFoundError('Not found.'), 'req-1');
    expect(result.statusCode).toBe(404);
    expect(result.headers).toMatchObject({ 'content-type': 'application/problem+json', 'x-request-id': 'req-1' });
    expect(JSON.parse(result.body)).toEqual({
      type: expect.stringContaining('not-found'),
      title: 'Not Found',
      status: 404,
      detail: 'Not found.',
      instance: 'req-1',
    });
  });

  it('adds WWW-Authenticate to 401 and the quota headers to 429', () => {
    expect(problem(new UnauthorizedError('no'), 'r').headers).toHaveProperty('WWW-Authenticate');
    const quota = problem(new QuotaExceededError('full', { 'Retry-After': '30' }), 'r');
    expect(quota.statusCode).toBe(429);
    expect(quota.headers).toHaveProperty('Retry-After', '30');
  });

  it('turns an unknown error into a 500 that reveals nothing', () => {
    const error = new Error('connection string postgres://secret@db');
    const result = problem(error, 'r');
    expect(result.statusCode).toBe(500);
    expect(result.body).not.toContain('secret');
    expect(result.body).not.toContain('at ');
  });

  it('serialises replies as JSON with x-request-id, or empty for 204', () => {
    expect(toResult({ status: 200, body: { a: 1 } }, 'r')).toMatchObject({ statusCode: 200, body: '{"a":1}', headers: { 'x-request-id': 'r' } });
    expect(toResult({ status: 204 }, 'r')).toMatchObject({ statusCode: 204, body: '' });
  });

  it('sends a JsonText body as its text, byte for byte, with the JSON content type; serialised elsewhere it is the same value', () => {
    const text = '{"b": [1, 2],\n "a": "é"}'; // spacing and key order that JSON.stringify would not keep
    const result = toResult({ status: 200, body: new JsonText(text) }, 'r');
    expect(result).toMatchObject({ statusCode: 200, body: text, headers: { 'content-type': 'application/json', 'x-request-id': 'r' } });
    expect(JSON.parse(JSON.stringify({ reply: new JsonText(text) }))).toEqual({ reply: { b: [1, 2], a: 'é' } });
  });
});

describe('header', () => {
  it('reads a header given once, in any case', () => {
    const event = { headers: { Authorization: 'Bearer a' }, multiValueHeaders: { Authorization: ['Bearer a'] } };
    expect(header(event, 'authorization')).toBe('Bearer a');
  });

  it('treats a header given more than once as absent, in the multi-value map or under two spellings', () => {
    const twice = { headers: { Authorization: 'Bearer b' }, multiValueHeaders: { Authorization: ['Bearer a', 'Bearer b'] } };
    const twoSpellings = { headers: { Authorization: 'Bearer a', authorization: 'Bearer b' } };
    expect(header(twice, 'authorization')).toBeUndefined();
    expect(header(twoSpellings, 'authorization')).toBeUndefined();
  });

  it('reads a header named like an Object member from a map without prototype', () => {
    const headers = Object.assign(Object.create(null) as Record<string, string>, { toString: 'x', constructor: 'y' });
    expect(header({ headers }, 'toString')).toBe('x');
    expect(header({ headers }, 'constructor')).toBe('y');
    expect(header({ headers }, 'valueOf')).toBeUndefined();
  });
});
