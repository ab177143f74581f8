/**
 * Request loggers (functions/core/observability.ts `inRequest`): every line a request's work writes carries
 * that request's keys, even when the work outlives its request (a 504 at the deadline leaves it running)
 * and another request has started since.
 */
import { inRequest, log } from '../../../functions/core/observability';

describe('request loggers', () => {
  let lines: string[];
  let write: jest.SpyInstance;

  beforeEach(() => {
    lines = [];
    write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: unknown) => {
      lines.push(String(chunk));
      return true;
    });
  });
  afterEach(() => write.mockRestore());

  const keysOf = (request: string, tenant: string) => ({ request_id: request, tenant_id: tenant, action_type: 'listDocuments' });

  it('writes a late line of a finished request under its own keys, not those of the request after it', async () => {
    // Arrange: request A's work leaves a continuation that logs once released, and A ends first.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let lateLogged!: Promise<void>;
    await inRequest(keysOf('request-a', 'tenant-a'), undefined, async (logger) => {
      logger.setLogLevel('INFO');
      lateLogged = released.then(() => log().info('late line of request A'));
    });
    // Act: request B runs, and A's late work logs while B is in flight.
    await inRequest(keysOf('request-b', 'tenant-b'), undefined, async (logger) => {
      logger.setLogLevel('INFO');
      log().info('line of request B');
      release();
      await lateLogged;
    });
    // Assess
    const parsed = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    const late = parsed.find((line) => line.message === 'late line of request A');
    const own = parsed.find((line) => line.message === 'line of request B');
    expect(late).toMatchObject({ request_id: 'request-a', tenant_id: 'tenant-a' });
    expect(own).toMatchObject({ request_id: 'request-b', tenant_id: 'tenant-b' });
  });
});
