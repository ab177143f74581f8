/**
 * The CDK app: one environment per run, chosen with `-c env=<dev|staging|prod>`:
 *
 *   npx cdk deploy --all -c env=dev
 *   npx cdk deploy --all -c env=prod -c corsOrigin=https://app.example.com
 *
 * Account and region come from the CDK environment (the credentials in use). Synth needs no network, no
 * Docker and no context lookups; functions are bundled by the local esbuild.
 */
import { App } from 'aws-cdk-lib';
import { settingsFor, withCorsOrigin } from '../lib/config';
import { createEnvironment } from '../lib/stacks/environment';

const app = new App();
createEnvironment(app, {
  // `-c corsOrigin=<origin>`: the browser front end allowed to call the API and the presigned URLs.
  settings: withCorsOrigin(settingsFor(app.node.tryGetContext('env')), app.node.tryGetContext('corsOrigin')),
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  jwksRefreshToken: app.node.tryGetContext('jwksRefresh'),
  // `-c smokeTestPrincipal=<role ARN>`: the role `npm run test:deployed` runs as may assume the
  // tenant-access role (its sessions are still narrowed to one tenant by the session policy).
  smokeTestPrincipalArn: app.node.tryGetContext('smokeTestPrincipal'),
});
app.synth();
