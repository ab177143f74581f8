import { parseConfig, ConfigError } from '../../../functions/core/config';
import {
  bucketCorsRule,
  corsHeaders,
  CORS_ALLOWED_HEADERS,
  CORS_EXPOSED_HEADERS,
  isAllowedOrigin,
  preflightHeaders,
  withCors,
} from '../../../functions/core/cors';

const ALLOWED = ['http://localhost:5173', 'https://app.example.com'];

describe('CORS_ORIGINS', () => {
  it('allows no origin unless configured', () => {
    expect(parseConfig({}).cors.allowedOrigins).toEqual([]);
  });

  it('reads a comma-separated list of exact origins, trimmed, lowercased and without duplicates', () => {
    const { allowedOrigins } = parseConfig({ CORS_ORIGINS: ' http://localhost:5173 ,HTTPS://App.Example.com,,http://localhost:5173' }).cors;
    expect(allowedOrigins).toEqual(['http://localhost:5173', 'https://app.example.com']);
  });

  it.each(['*', 'https://*.example.com', 'https://app.example.com/', 'app.example.com', 'ftp://app.example.com', 'null'])(
    'refuses %s, naming the variable',
    (value) => {
      expect(() => parseConfig({ CORS_ORIGINS: value })).toThrow(ConfigError);
      expect(() => parseConfig({ CORS_ORIGINS: value })).toThrow(/CORS_ORIGINS/);
    },
  );
});

describe('answers to an allowed origin', () => {
  it('name that origin (never *) and expose the request id, location, back-off and rate-limit headers', () => {
    const headers = corsHeaders('https://app.example.com', ALLOWED);
    expect(headers['access-control-allow-origin']).toBe('https://app.example.com');
    const exposed = headers['access-control-expose-headers']!.split(', ');
    expect(exposed).toEqual(expect.arrayContaining(['x-request-id', 'location', 'retry-after', 'ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset', 'x-quota-limit', 'x-quota-remaining', 'x-quota-reset']));
    expect(headers.vary).toBe('Origin');
  });

  it('answer a preflight with the path methods, the request headers the API reads and a max age', () => {
    const headers = preflightHeaders('http://localhost:5173', ALLOWED, ['GET', 'POST']);
    expect(headers).toEqual({
      'access-control-allow-origin': 'http://localhost:5173',
      'access-control-allow-methods': 'GET, POST, OPTIONS',
      'access-control-allow-headers': CORS_ALLOWED_HEADERS.join(', '),
      'access-control-max-age': '7200',
      vary: 'Origin',
    });
    expect(CORS_ALLOWED_HEADERS).toEqual(expect.arrayContaining(['authorization', 'content-type', 'idempotency-key', 'x-correlation-id']));
  });

  it('replace CORS headers an answer already has under another spelling, so each is sent once', () => {
    const result = withCors({ statusCode: 200, headers: { Vary: 'Accept', 'x-request-id': 'r1' } }, 'https://app.example.com', ALLOWED);
    expect(result.headers).toEqual({
      'x-request-id': 'r1',
      'access-control-allow-origin': 'https://app.example.com',
      'access-control-expose-headers': CORS_EXPOSED_HEADERS.join(', '),
      vary: 'Origin',
    });
  });
});

describe.each([
  ['a foreign origin', 'https://evil.example'],
  ['a look-alike of an allowed origin', 'https://app.example.com.evil.example'],
  ['the null origin of a sandboxed page', 'null'],
  ['no origin', undefined],
])('answers to %s', (_label, origin) => {
  it('carry no Access-Control-* header, on actual answers and preflights alike', () => {
    expect(isAllowedOrigin(origin, ALLOWED)).toBe(false);
    expect(corsHeaders(origin, ALLOWED)).toEqual({ vary: 'Origin' });
    expect(preflightHeaders(origin, ALLOWED, ['GET'])).toEqual({ vary: 'Origin' });
    const result = withCors({ statusCode: 404, headers: { 'x-request-id': 'r1' } }, origin, ALLOWED);
    expect(Object.keys(result.headers).filter((k) => k.toLowerCase().startsWith('access-control-'))).toEqual([]);
  });
});

describe('the tenant bucket rule', () => {
  it('lets exactly the allowed origins PUT, GET and HEAD with the content type the upload URL binds', () => {
    expect(bucketCorsRule(ALLOWED)).toEqual({
      AllowedOrigins: ALLOWED,
      AllowedMethods: ['PUT', 'GET', 'HEAD'],
      AllowedHeaders: ['content-type', 'if-none-match'],
      ExposeHeaders: ['etag'],
      MaxAgeSeconds: 7200,
    });
  });
});
