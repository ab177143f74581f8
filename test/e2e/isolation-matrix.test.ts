/**
 * The isolation matrix over the route manifest (test/e2e/support/isolation-matrix.ts): a route added to
 * the manifest is covered here without new test code; its id parameters are filled from the fixture
 * table beside the matrix (test/e2e/support/resource-fixtures.ts).
 */
import postgres from 'postgres';
import { routeList } from '../../functions/routes';
import { describeIsolationMatrix } from './support/isolation-matrix';
import { idParameters, RESOURCE_FIXTURES } from './support/resource-fixtures';
import { startE2eStack, type E2eStack } from './support/stack';

let stack: E2eStack;
let admin: postgres.Sql;
let cases = 0;

beforeAll(async () => {
  stack = await startE2eStack();
  admin = postgres(process.env.TEST_ADMIN_DATABASE_URL!, { max: 1, onnotice: () => undefined });
});
afterAll(async () => {
  process.stdout.write(`isolation matrix: ${cases} cases\n`);
  await admin?.end();
  await stack?.stop();
});

it('has a resource fixture for every id parameter of the manifest', () => {
  const parameters = [...new Set(routeList.flatMap((r) => idParameters(r.path)))];
  // Positive control: the manifest does have id parameters.
  expect(parameters).toContain('documentId');
  expect(parameters.filter((p) => !Object.hasOwn(RESOURCE_FIXTURES, p))).toEqual([]);
});

describeIsolationMatrix(routeList, {
  stack: () => stack,
  admin: () => admin,
  fixtures: RESOURCE_FIXTURES,
  counted: () => cases++,
});
