/**
 * Identity: the environment's Cognito user pool (custom:tenant_id immutable, custom:role), an app client
 * without a secret, and a deploy-time snapshot of the pool's JWKS for the functions.
 *
 * Why a snapshot: route functions run in subnets without any internet path and verify every ID token
 * again (aws-jwt-verify). The JWKS lives at https://cognito-idp.<region>.amazonaws.com/<pool>/.well-known/jwks.json.
 * Cognito's PrivateLink endpoint is documented for the user pools API (SDK requests), not for that
 * document, and a NAT gateway only for it would give every function an internet path. So the keys are
 * fetched once per deployment by a small custom resource that runs outside the VPC, and handed to the
 * functions as `JWKS_URL` in the form of a `data:` URL, read without any network (functions/core/data-url.ts);
 * functions/core/auth.ts loads it into the verifier's cache (`cacheJwks`) while still checking the
 * Cognito issuer and audience. Cognito does not rotate a pool's signing keys on its own; should they ever
 * change, a deploy refreshes the snapshot (the resource re-runs when `refreshToken` changes).
 */
import { CustomResource, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';

export interface IdentityProps {
  /** `optional` lets users enroll a TOTP; `required` enforces it at sign-in. */
  readonly mfa: 'off' | 'optional' | 'required';
  /** Threat protection (advanced security) in enforced mode; needs the Plus feature plan. */
  readonly advancedSecurity: boolean;
  readonly removalPolicy?: RemovalPolicy;
  readonly logRetention: logs.RetentionDays;
  /**
   * Hosted-UI callback URLs. With none, the app client has OAuth switched off: no authorization code or
   * implicit flow, no placeholder callback. @default none
   */
  readonly oauthCallbackUrls?: readonly string[];
  /** Changing this re-fetches the JWKS snapshot on the next deploy. @default '1' */
  readonly jwksRefreshToken?: string;
}

// Inline so that it needs no bundling; it only downloads a public document.
const JWKS_SNAPSHOT_CODE = `
exports.handler = async (event) => {
  if (event.RequestType === 'Delete') return { PhysicalResourceId: event.PhysicalResourceId };
  const { Region, UserPoolId } = event.ResourceProperties;
  const url = 'https://cognito-idp.' + Region + '.amazonaws.com/' + UserPoolId + '/.well-known/jwks.json';
  const response = await fetch(url, { signal: AbortSignal.timeout(10000) });
  if (!response.ok) throw new Error('JWKS answered ' + response.status);
  const jwks = await response.json();
  if (!Array.isArray(jwks.keys) || jwks.keys.length === 0) throw new Error('JWKS without keys');
  const body = JSON.stringify({ keys: jwks.keys });
  return {
    PhysicalResourceId: UserPoolId + '-jwks',
    Data: { DataUrl: 'data:application/json;base64,' + Buffer.from(body).toString('base64') },
  };
};`;

/**
 * What a user may change about themselves through UpdateUserAttributes: only attributes nothing
 * trusts. Never `custom:role` or `custom:tenant_id` (the claims of authorization), nor `email` (a
 * member is found by its email's blind index). An empty list would not do: Cognito reads
 * `WriteAttributes: []` as "not specified" and lets users write every mutable attribute.
 */
export const USER_WRITABLE_ATTRIBUTES = new cognito.ClientAttributes().withStandardAttributes({
  fullname: true,
  locale: true,
  timezone: true,
});

export class Identity extends Construct {
  public readonly userPool: cognito.UserPool;
  public readonly client: cognito.UserPoolClient;
  /** `data:` URL with the pool's JWKS, resolved at deploy time (see the module comment). */
  public readonly jwksDataUrl: string;

  constructor(scope: Construct, id: string, props: IdentityProps) {
    super(scope, id);
    const mfa = { off: cognito.Mfa.OFF, optional: cognito.Mfa.OPTIONAL, required: cognito.Mfa.REQUIRED }[props.mfa];
    this.userPool = new cognito.UserPool(this, 'UserPool', {
      selfSignUpEnabled: false,
      signInAliases: { email: true },
      signInCaseSensitive: false,
      autoVerify: { email: true },
      standardAttributes: { email: { required: true, mutable: true } },
      customAttributes: {
        // A user never moves between tenants: the claim the API trusts for isolation is write-once.
        tenant_id: new cognito.StringAttribute({ minLen: 3, maxLen: 40, mutable: false }),
        role: new cognito.StringAttribute({ minLen: 1, maxLen: 32, mutable: true }),
      },
      passwordPolicy: {
        minLength: 12,
        requireLowercase: true,
        requireUppercase: true,
        requireDigits: true,
        requireSymbols: true,
        tempPasswordValidity: Duration.days(3),
      },
      mfa,
      mfaSecondFactor: props.mfa === 'off' ? undefined : { otp: true, sms: false },
      accountRecovery: cognito.AccountRecovery.EMAIL_ONLY,
      featurePlan: props.advancedSecurity ? cognito.FeaturePlan.PLUS : cognito.FeaturePlan.ESSENTIALS,
      standardThreatProtectionMode: props.advancedSecurity ? cognito.StandardThreatProtectionMode.FULL_FUNCTION : undefined,
      deletionProtection: props.removalPolicy === RemovalPolicy.RETAIN,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });
    if (props.mfa !== 'required') {
      Validations.of(this.userPool).acknowledge({
        id: 'AwsSolutions-COG2',
        reason: 'MFA is optional in this environment (per-environment setting); prod requires it.',
      });
    }
    if (!props.advancedSecurity) {
      Validations.of(this.userPool).acknowledge({
        id: 'AwsSolutions-COG3',
        reason: 'Threat protection (Plus plan) is enabled in staging and prod; dev saves its per-user cost.',
      });
      Validations.of(this.userPool).acknowledge({
        id: 'AwsSolutions-COG8',
        reason: 'The Plus feature plan (threat protection) is used in staging and prod; dev stays on Essentials.',
      });
    }

    this.client = this.userPool.addClient('ApiClient', {
      generateSecret: false,
      authFlows: { userSrp: true, userPassword: false, adminUserPassword: false, custom: false },
      preventUserExistenceErrors: true,
      idTokenValidity: Duration.hours(1),
      accessTokenValidity: Duration.hours(1),
      refreshTokenValidity: Duration.days(30),
      enableTokenRevocation: true,
      // The tenant claim is readable by the client; only administrators write it.
      readAttributes: new cognito.ClientAttributes()
        .withStandardAttributes({ email: true, emailVerified: true })
        .withCustomAttributes('tenant_id', 'role'),
      writeAttributes: USER_WRITABLE_ATTRIBUTES,
      ...(props.oauthCallbackUrls?.length
        ? {
            oAuth: {
              flows: { authorizationCodeGrant: true, implicitCodeGrant: false },
              scopes: [cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL],
              callbackUrls: [...props.oauthCallbackUrls],
            },
          }
        : { disableOAuth: true }),
    });

    const snapshotLogs = new logs.LogGroup(this, 'JwksSnapshotLogs', {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const snapshot = new lambda.Function(this, 'JwksSnapshot', {
      description: "Deploy time: copies the user pool's public JWKS for functions without internet",
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      handler: 'index.handler',
      code: lambda.Code.fromInline(JWKS_SNAPSHOT_CODE),
      timeout: Duration.seconds(30),
      logGroup: snapshotLogs,
    });
    const provider = new cr.Provider(this, 'JwksSnapshotProvider', {
      onEventHandler: snapshot,
      logGroup: snapshotLogs,
    });
    const resource = new CustomResource(this, 'Jwks', {
      serviceToken: provider.serviceToken,
      resourceType: 'Custom::CognitoJwksSnapshot',
      properties: {
        Region: Stack.of(this).region,
        UserPoolId: this.userPool.userPoolId,
        RefreshToken: props.jwksRefreshToken ?? '1',
      },
    });
    this.jwksDataUrl = resource.getAttString('DataUrl');

    acknowledgeCustomResourceFindings(snapshot, provider, 'downloads a public JWKS document; it needs no AWS permissions');
  }
}

/**
 * The CDK provider framework and a small custom-resource function use the AWS-managed basic execution
 * policy, wildcard `lambda:InvokeFunction` on their own handler's versions, and a runtime the framework
 * chooses. Acknowledged here, once, with what each function does.
 */
export function acknowledgeCustomResourceFindings(handler: lambda.IFunction, provider: cr.Provider, what: string): void {
  const managed = 'Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole';
  const vpcManaged = 'Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole';
  for (const scope of [handler, provider]) {
    Validations.of(scope).acknowledge(
      { id: `AwsSolutions-IAM4[${managed}]`, reason: `Custom-resource function (${what}): the AWS basic execution policy only writes its own logs.` },
      { id: `AwsSolutions-IAM4[${vpcManaged}]`, reason: `Custom-resource function (${what}): the AWS VPC access policy manages its network interfaces.` },
      { id: 'AwsSolutions-L1', reason: `Custom-resource function (${what}): Node.js 22, the runtime every function of this project uses.` },
    );
  }
  Validations.of(provider).acknowledge({
    id: `AwsSolutions-IAM5[Resource::<${Stack.of(provider).getLogicalId(
      (handler.node.defaultChild as lambda.CfnFunction),
    )}.Arn>:*]`,
    reason: 'The provider framework invokes any version of its one handler function.',
  });
}
