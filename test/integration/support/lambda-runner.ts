/**
 * Runs route handlers the way the Lambda Node.js runtime does, in a process of its own whose environment
 * the test sets as Lambda sets it: for each invocation, `_X_AMZN_TRACE_ID` is set to that invocation's
 * trace header and the handler is called with the event and a Lambda context. Invocations come as JSON
 * in argv[2]; each answer is printed as one `RESULT <json>` line on stdout.
 */
import type { Context } from 'aws-lambda';
import { route, wrap } from '../../../functions/core/handler';
import { sql } from '../../../functions/core/db';
import { work } from '../../../functions/documents/list';
import { routes } from '../../../functions/routes';
import { eventFor, trustingAuthenticator } from '../../support/api';

export interface Invocation {
  readonly traceHeader: string;
  readonly awsRequestId: string;
  readonly tenantId: string;
  readonly userId: string;
  readonly correlationId?: string;
  /** The route's work throws an unexpected error. */
  readonly fails?: boolean;
}

const deps = { authenticator: () => trustingAuthenticator };
const list = route(routes.listDocuments, work, deps);
const failing = wrap(routes.listDocuments.id, routes.listDocuments, async () => {
  throw new Error('the work failed');
}, deps);

async function main(): Promise<void> {
  const invocations = JSON.parse(process.argv[2]!) as Invocation[];
  for (const inv of invocations) {
    process.env._X_AMZN_TRACE_ID = inv.traceHeader;
    const event = eventFor(routes.listDocuments, {
      pathParameters: { tenantId: inv.tenantId },
      caller: { userId: inv.userId, tenantId: inv.tenantId, role: 'user' } as never,
    });
    if (inv.correlationId) event.headers['X-Correlation-Id'] = inv.correlationId;
    const context = {
      awsRequestId: inv.awsRequestId,
      functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
      functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
      memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
      invokedFunctionArn: `arn:aws:lambda:us-east-1:123456789012:function:${process.env.AWS_LAMBDA_FUNCTION_NAME}`,
      logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
      logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
      callbackWaitsForEmptyEventLoop: true,
      getRemainingTimeInMillis: () => 10_000,
    } as unknown as Context;
    const result = await (inv.fails ? failing : list)(event, context);
    process.stdout.write(`RESULT ${JSON.stringify({ statusCode: result.statusCode, headers: result.headers })}\n`);
  }
  await sql().end();
  // Each invocation's subsegments leave in a UDP send that completes after the handler returns.
  await new Promise((resolve) => setTimeout(resolve, 200));
}

main().catch((error: unknown) => {
  process.stderr.write(`runner failed: ${String(error)}\n`);
  process.exit(2);
});
