/** The local API Gateway's routing and event shape: pure functions, no server. */
import { buildEvent, matchRoute, type LocalRoute } from '../../../../bin/stack/http-server';
import { routeList, routes } from '../../../../functions/routes';

const getDocument = routeList.find((r) => r.id === 'getDocument') as LocalRoute;

describe('matchRoute', () => {
  it('matches a path template and URL-decodes its parameters', () => {
    // Act
    const match = matchRoute('GET', '/api/acme/documents/a%2Fb%20c');

    // Assess
    expect(match).toEqual({ kind: 'route', route: getDocument, pathParameters: { tenantId: 'acme', documentId: 'a/b c' } });
  });

  it('prefers the literal /api/tenants over the /api/{tenantId}/… templates and gives parameterless routes null parameters', () => {
    // Act
    const match = matchRoute('GET', '/api/tenants');

    // Assess
    expect(match).toMatchObject({ kind: 'route', route: { id: 'listTenants' }, pathParameters: null });
  });

  it('answers method-not-allowed with the methods the path takes', () => {
    expect(matchRoute('PUT', '/api/acme/documents')).toEqual({ kind: 'method-not-allowed', allow: ['GET', 'POST'] });
  });

  it('does not normalise dot segments, trailing slashes or empty segments', () => {
    expect(matchRoute('GET', '/api/acme/x/../documents')).toEqual({ kind: 'not-found' });
    expect(matchRoute('GET', '/health/')).toEqual({ kind: 'not-found' });
    expect(matchRoute('GET', '/api//documents')).toEqual({ kind: 'not-found' });
  });

  it('refuses a parameter that is not valid URL encoding', () => {
    expect(matchRoute('GET', '/api/acme/documents/%E0%A4%A')).toEqual({ kind: 'bad-parameter' });
  });
});

describe('buildEvent', () => {
  it('builds the REST proxy event of a deployed stage, with multi-value headers and query and the claims', () => {
    // Act
    const event = buildEvent(
      {
        method: 'GET',
        rawPath: '/api/acme/documents/d1',
        search: '?limit=5&tag=a&tag=b',
        rawHeaders: ['Authorization', 'Bearer t', 'X-Thing', '1', 'x-thing', '2'],
        body: Buffer.alloc(0),
        sourceIp: '127.0.0.1',
      },
      getDocument,
      { tenantId: 'acme', documentId: 'd1' },
      { sub: 'u', 'custom:tenant_id': 'acme' },
      'req-1',
    );

    // Assess
    expect(event).toMatchObject({
      resource: routes.getDocument.path,
      path: '/api/acme/documents/d1',
      httpMethod: 'GET',
      headers: { Authorization: 'Bearer t', 'X-Thing': '2' },
      multiValueHeaders: { Authorization: ['Bearer t'], 'X-Thing': ['1', '2'] },
      queryStringParameters: { limit: '5', tag: 'b' },
      multiValueQueryStringParameters: { limit: ['5'], tag: ['a', 'b'] },
      pathParameters: { tenantId: 'acme', documentId: 'd1' },
      stageVariables: null,
      body: null,
      isBase64Encoded: false,
      requestContext: {
        requestId: 'req-1',
        stage: 'local',
        resourcePath: routes.getDocument.path,
        path: '/local/api/acme/documents/d1',
        httpMethod: 'GET',
        identity: { sourceIp: '127.0.0.1' },
        authorizer: { claims: { sub: 'u', 'custom:tenant_id': 'acme' } },
      },
    });
  });

  it('passes no query maps and no authorizer when there are none, and the body as text', () => {
    // Act
    const event = buildEvent(
      { method: 'POST', rawPath: '/health', search: '', rawHeaders: [], body: Buffer.from('{"a":1}'), sourceIp: '::1' },
      getDocument,
      null,
      null,
      'req-2',
    );

    // Assess
    expect(event.queryStringParameters).toBeNull();
    expect(event.multiValueQueryStringParameters).toBeNull();
    expect(event.requestContext.authorizer).toBeNull();
    expect(event.body).toBe('{"a":1}');
  });

  it('keeps query and header names like __proto__, constructor and toString as plain keys', () => {
    // Act
    const event = buildEvent(
      {
        method: 'GET',
        rawPath: '/health',
        search: '?constructor=1&__proto__=2&toString=3&toString=4',
        rawHeaders: ['toString', 'a', '__proto__', 'b', 'constructor', 'c'],
        body: Buffer.alloc(0),
        sourceIp: '127.0.0.1',
      },
      getDocument,
      null,
      null,
      'req-3',
    );

    // Assess
    expect(Object.entries(event.queryStringParameters!)).toEqual([['constructor', '1'], ['__proto__', '2'], ['toString', '4']]);
    expect(event.multiValueQueryStringParameters!['toString']).toEqual(['3', '4']);
    expect(Object.entries(event.headers)).toEqual([['toString', 'a'], ['__proto__', 'b'], ['constructor', 'c']]);
    expect(event.multiValueHeaders['constructor']).toEqual(['c']);
    expect(Object.getPrototypeOf(event.headers)).toBeNull();
  });
});
