/** The CORS parts of the API construct that need no synthesis: the preflight template and gateway headers. */
import { gatewayCorsHeaders, preflightTemplate } from '../../lib/constructs/api';

describe('the preflight response template', () => {
  it('sets the CORS headers only inside a test for exact equality with each allowed origin', () => {
    const template = preflightTemplate(['http://localhost:5173', 'https://app.example.com'], ['GET', 'POST']);
    expect(template).toContain('#if($origin == "http://localhost:5173" || $origin == "https://app.example.com")');
    const inside = template.slice(template.indexOf('#if($origin'), template.indexOf('#end', template.indexOf('#if($origin')));
    expect(inside).toContain('Access-Control-Allow-Origin = $origin');
    expect(inside).toContain('Access-Control-Allow-Methods = "GET, POST, OPTIONS"');
    expect(inside).toContain('Access-Control-Max-Age = "7200"');
    expect(template).not.toMatch(/\.matches\(|\*/);
  });

  it('allows nothing when no origin is configured', () => {
    expect(preflightTemplate([], ['GET'])).toContain('#if(false)');
  });
});

describe("the gateway responses' CORS headers", () => {
  it("name the environment's one allowed origin, statically", () => {
    expect(gatewayCorsHeaders(['https://app.example.com'])).toMatchObject({
      'Access-Control-Allow-Origin': "'https://app.example.com'",
      Vary: "'Origin'",
    });
  });

  it('are absent without an allowed origin', () => {
    expect(gatewayCorsHeaders([])).toEqual({});
  });

  it('refuse several origins rather than echo an unchecked Origin or send *', () => {
    expect(() => gatewayCorsHeaders(['https://a.example.com', 'https://b.example.com'])).toThrow(/only one origin/);
  });
});
