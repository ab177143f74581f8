/**
 * The REST API, generated from the route manifest: one method per route, every non-public one behind
 * the Cognito user pool authorizer (ID token in `Authorization`), request validation (path parameters,
 * JSON bodies against the manifest's schema), stage throttling, JSON access logs that carry the caller's
 * tenant claim, X-Ray, and gateway responses so that API Gateway's own errors answer
 * `application/problem+json` like the functions do. Optionally a WAF web ACL with a per-IP rate rule and a
 * per-path one (see `PATH_KEY_TRANSFORMATIONS`).
 *
 * CORS (functions/core/cors.ts): every resource gets an `OPTIONS` method answered by API Gateway itself
 * (a mock integration, no function runs) whose response template names the request's `Origin` only when
 * it is exactly one of the allowed origins. CDK's `defaultCorsPreflightOptions` is not used: with several
 * origins it also maps a static `Access-Control-Allow-Origin` (the first origin) that overrides the
 * template, so every other origin would be refused and foreign origins would get a header. Gateway
 * responses can carry only static values (or an unchecked echo of `method.request.header.Origin`), so
 * they name the environment's one allowed origin; an environment with several origins is refused at
 * synth rather than answered with an echo or `*`.
 */
import { RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';
import { parseConfig } from '../../functions/core/config';
import { CORS_ALLOWED_HEADERS, CORS_EXPOSED_HEADERS, CORS_MAX_AGE_SECONDS } from '../../functions/core/cors';
import type { JsonSchema, RouteId } from '../../functions/routes';
import type { ManifestRoute } from './route-functions';

export interface ApiProps {
  readonly routes: readonly ManifestRoute[];
  /** The function of each route. */
  readonly functions: ReadonlyMap<RouteId, lambda.IFunction>;
  readonly userPool: cognito.IUserPool;
  readonly stageName?: string;
  readonly throttle: { readonly rateLimit: number; readonly burstLimit: number };
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy?: RemovalPolicy;
  /** A WAF web ACL with a per-IP and a per-path rate-based rule; undefined for none. */
  readonly waf?: { readonly requestsPer5MinPerIp: number; readonly requestsPerMinutePerPath: number };
  /** Browser origins allowed by CORS: at most one (see the module comment). @default none */
  readonly corsOrigins?: readonly string[];
}

/** Fields of every access-log line (JSON); `tenantId` is the caller's `custom:tenant_id` claim. */
export const ACCESS_LOG_FIELDS = {
  requestId: '$context.requestId',
  extendedRequestId: '$context.extendedRequestId',
  ip: '$context.identity.sourceIp',
  requestTime: '$context.requestTime',
  httpMethod: '$context.httpMethod',
  resourcePath: '$context.resourcePath',
  status: '$context.status',
  responseLength: '$context.responseLength',
  responseLatency: '$context.responseLatency',
  integrationLatency: '$context.integrationLatency',
  integrationStatus: '$context.integration.status',
  errorType: '$context.error.responseType',
  tenantId: '$context.authorizer.claims.custom:tenant_id',
  role: '$context.authorizer.claims.custom:role',
  userId: '$context.authorizer.claims.sub',
  xrayTraceId: '$context.xrayTraceId',
  wafStatus: '$context.waf.status',
} as const;

/**
 * API Gateway's own error answers, as problem+json (API.md): status, title and a safe detail. The
 * `type` URI is derived from the title as functions/core/errors.ts derives it.
 */
export const GATEWAY_PROBLEMS: ReadonlyArray<{
  readonly type: apigw.ResponseType;
  readonly status?: number;
  readonly title: string;
  readonly detail: string;
}> = [
  { type: apigw.ResponseType.UNAUTHORIZED, status: 401, title: 'Unauthorized', detail: 'A valid bearer ID token is required.' },
  { type: apigw.ResponseType.EXPIRED_TOKEN, status: 401, title: 'Unauthorized', detail: 'The token has expired.' },
  { type: apigw.ResponseType.INVALID_SIGNATURE, status: 401, title: 'Unauthorized', detail: 'The token is not valid.' },
  { type: apigw.ResponseType.ACCESS_DENIED, status: 403, title: 'Forbidden', detail: 'The caller may not use this route.' },
  { type: apigw.ResponseType.AUTHORIZER_FAILURE, status: 503, title: 'Service Unavailable', detail: 'Authentication is unavailable; try again shortly.' },
  { type: apigw.ResponseType.AUTHORIZER_CONFIGURATION_ERROR, status: 503, title: 'Service Unavailable', detail: 'Authentication is unavailable; try again shortly.' },
  // An unknown path or method: API Gateway's "missing authentication token" is really "no such route".
  { type: apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN, status: 404, title: 'Not Found', detail: 'No route matches this method and path.' },
  { type: apigw.ResponseType.RESOURCE_NOT_FOUND, status: 404, title: 'Not Found', detail: 'No route matches this method and path.' },
  { type: apigw.ResponseType.BAD_REQUEST_BODY, status: 400, title: 'Bad Request', detail: 'The request body does not match the schema of this route.' },
  { type: apigw.ResponseType.BAD_REQUEST_PARAMETERS, status: 400, title: 'Bad Request', detail: 'A required request parameter is missing.' },
  { type: apigw.ResponseType.REQUEST_TOO_LARGE, status: 413, title: 'Payload Too Large', detail: 'The request body is too large.' },
  { type: apigw.ResponseType.UNSUPPORTED_MEDIA_TYPE, status: 415, title: 'Unsupported Media Type', detail: 'Send the body as application/json.' },
  { type: apigw.ResponseType.THROTTLED, status: 429, title: 'Too Many Requests', detail: 'Request rate exceeded; retry later.' },
  { type: apigw.ResponseType.QUOTA_EXCEEDED, status: 429, title: 'Too Many Requests', detail: 'Request quota exceeded; retry later.' },
  { type: apigw.ResponseType.WAF_FILTERED, status: 403, title: 'Forbidden', detail: 'The request was blocked.' },
  { type: apigw.ResponseType.INTEGRATION_TIMEOUT, status: 504, title: 'Gateway Timeout', detail: 'The service did not answer in time; try again.' },
  // Anything else keeps API Gateway's status; the body then says only what kind of error it was.
  { type: apigw.ResponseType.DEFAULT_4XX, title: 'Client Error', detail: 'The request was refused.' },
  { type: apigw.ResponseType.DEFAULT_5XX, title: 'Server Error', detail: 'The service failed to answer; try again shortly.' },
];

function problemType(title: string): string {
  return `https://problems.tenant-sovereign.dev/${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
}

/** A velocity template rendering a problem document; `instance` is the request id. */
export function problemTemplate(p: { status?: number; title: string; detail: string }): string {
  const body: Record<string, string | number> = { type: problemType(p.title), title: p.title };
  if (p.status !== undefined) body.status = p.status;
  body.detail = p.detail;
  body.instance = '$context.requestId';
  return JSON.stringify(body);
}

const DRAFT4_KEYS = new Set([
  'type', 'properties', 'required', 'additionalProperties', 'items', 'enum', 'minLength', 'maxLength',
  'minimum', 'maximum', 'pattern', 'format', 'description', 'minItems', 'maxItems', 'default',
]);

/**
 * The manifest's JSON Schema (draft 2020-12 subset) as the draft-4 schema API Gateway validates with:
 * `const` becomes a one-value `enum`; keywords draft 4 does not know are dropped (never tightened).
 */
export function toApiGatewaySchema(schema: JsonSchema): apigw.JsonSchema {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'const') out.enum = [value];
    else if (key === 'properties') {
      out.properties = Object.fromEntries(
        Object.entries(value as Record<string, JsonSchema>).map(([name, s]) => [name, toApiGatewaySchema(s)]),
      );
    } else if (key === 'items') out.items = toApiGatewaySchema(value as JsonSchema);
    else if (DRAFT4_KEYS.has(key)) out[key] = value;
  }
  return out as apigw.JsonSchema;
}

/**
 * How the per-path rate rule reads a URI path: decoded, normalised (`//`, `/./`, `/../`) and lower-cased,
 * so that spellings of one tenant's path cannot split its count over several keys.
 */
export const PATH_KEY_TRANSFORMATIONS: wafv2.CfnWebACL.TextTransformationProperty[] = [
  { priority: 0, type: 'URL_DECODE' },
  { priority: 1, type: 'NORMALIZE_PATH' },
  { priority: 2, type: 'LOWERCASE' },
];

/**
 * The response template of a resource's preflight: all CORS headers, through response overrides, only
 * when the `Origin` header equals an allowed origin exactly (string equality, no patterns).
 */
export function preflightTemplate(origins: readonly string[], methods: readonly string[]): string {
  const condition = origins.length > 0 ? origins.map((o) => `$origin == "${o}"`).join(' || ') : 'false';
  const set = (name: string, value: string) => `  #set($context.responseOverride.header.${name} = ${value})`;
  return [
    '#set($origin = $input.params().header.get("Origin"))',
    '#if("$!origin" == "")#set($origin = $input.params().header.get("origin"))#end',
    `#if(${condition})`,
    set('Access-Control-Allow-Origin', '$origin'),
    set('Access-Control-Allow-Methods', `"${[...methods, 'OPTIONS'].join(', ')}"`),
    set('Access-Control-Allow-Headers', `"${CORS_ALLOWED_HEADERS.join(', ')}"`),
    set('Access-Control-Max-Age', `"${CORS_MAX_AGE_SECONDS}"`),
    '#end',
    set('Vary', '"Origin"').trim(),
  ].join('\n');
}

/** Headers every gateway response carries for the environment's one allowed origin (none without one). */
export function gatewayCorsHeaders(origins: readonly string[]): Record<string, string> {
  if (origins.length === 0) return {};
  if (origins.length > 1) {
    throw new Error(
      `API Gateway's own answers can name only one origin (static header values); got ${origins.join(', ')}`,
    );
  }
  return {
    'Access-Control-Allow-Origin': `'${origins[0]}'`,
    'Access-Control-Expose-Headers': `'${CORS_EXPOSED_HEADERS.join(', ')}'`,
    Vary: "'Origin'",
  };
}

function pathParameters(path: string): string[] {
  return [...path.matchAll(/\{([A-Za-z0-9_]+)\}/g)].map((m) => m[1]!);
}

export class Api extends Construct {
  public readonly restApi: apigw.RestApi;
  public readonly authorizer: apigw.CognitoUserPoolsAuthorizer;
  public readonly accessLogs: logs.LogGroup;
  public readonly webAcl?: wafv2.CfnWebACL;
  /** The method of each route. */
  public readonly methods: ReadonlyMap<RouteId, apigw.Method>;
  /** The CORS preflight (`OPTIONS`) method of each route path. */
  public readonly preflights: ReadonlyMap<string, apigw.Method>;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);
    this.accessLogs = new logs.LogGroup(this, 'AccessLogs', {
      retention: props.logRetention,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.DESTROY,
    });
    this.restApi = new apigw.RestApi(this, 'RestApi', {
      description: 'Tenant-sovereign backend: one method per manifest route',
      endpointTypes: [apigw.EndpointType.REGIONAL],
      cloudWatchRole: true,
      cloudWatchRoleRemovalPolicy: RemovalPolicy.RETAIN,
      deployOptions: {
        stageName: props.stageName ?? 'v1',
        tracingEnabled: true,
        metricsEnabled: true,
        loggingLevel: apigw.MethodLoggingLevel.ERROR,
        // Request/response bodies and headers (tokens, member data) never reach execution logs.
        dataTraceEnabled: false,
        throttlingRateLimit: props.throttle.rateLimit,
        throttlingBurstLimit: props.throttle.burstLimit,
        accessLogDestination: new apigw.LogGroupLogDestination(this.accessLogs),
        accessLogFormat: apigw.AccessLogFormat.custom(JSON.stringify(ACCESS_LOG_FIELDS)),
      },
    });
    Validations.of(this.restApi).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
      reason: "API Gateway's account-level logging role uses the AWS-managed push-to-CloudWatch policy, as documented.",
    });
    if (!props.waf) {
      Validations.of(this.restApi).acknowledge({
        id: 'AwsSolutions-APIG3',
        reason: 'The WAF web ACL is enabled in staging and prod (per-environment setting); dev relies on stage throttling.',
      });
    }

    this.authorizer = new apigw.CognitoUserPoolsAuthorizer(this, 'Authorizer', {
      cognitoUserPools: [props.userPool],
      identitySource: apigw.IdentitySource.header('Authorization'),
    });
    const validator = this.restApi.addRequestValidator('Validator', {
      validateRequestBody: true,
      validateRequestParameters: true,
    });

    // Parsed as the functions parse CORS_ORIGINS: exact origins only, never `*`.
    const corsOrigins = parseConfig({ CORS_ORIGINS: (props.corsOrigins ?? []).join(',') }).cors.allowedOrigins;
    const gatewayCors = gatewayCorsHeaders(corsOrigins);
    for (const p of GATEWAY_PROBLEMS) {
      this.restApi.addGatewayResponse(p.type.responseType, {
        type: p.type,
        statusCode: p.status === undefined ? undefined : String(p.status),
        responseHeaders: {
          'Content-Type': "'application/problem+json'",
          'x-request-id': 'context.requestId',
          ...(p.status === 401 ? { 'WWW-Authenticate': "'Bearer realm=\"api\", error=\"invalid_token\"'" } : {}),
          ...gatewayCors,
        },
        templates: { 'application/json': problemTemplate(p) },
      });
    }

    const methods = new Map<RouteId, apigw.Method>();
    for (const route of props.routes) {
      const fn = props.functions.get(route.id);
      if (!fn) throw new Error(`No function for route ${route.id}`);
      const resource = this.restApi.root.resourceForPath(route.path);
      const requestParameters: Record<string, boolean> = {};
      for (const name of pathParameters(route.path)) requestParameters[`method.request.path.${name}`] = true;
      for (const name of Object.keys(route.query ?? {})) requestParameters[`method.request.querystring.${name}`] = false;
      // Optional; its rule (core/idempotency.ts) is the function's to check (400).
      if (route.idempotent) requestParameters['method.request.header.Idempotency-Key'] = false;
      const requestModels = route.body
        ? {
            'application/json': this.restApi.addModel(`${route.id}Body`, {
              contentType: 'application/json',
              schema: { schema: apigw.JsonSchemaVersion.DRAFT4, ...toApiGatewaySchema(route.body) },
            }),
          }
        : undefined;
      const isPublic = route.auth === 'public';
      const method = resource.addMethod(route.method, new apigw.LambdaIntegration(fn, { proxy: true, allowTestInvoke: false }), {
        operationName: route.id,
        authorizationType: isPublic ? apigw.AuthorizationType.NONE : apigw.AuthorizationType.COGNITO,
        authorizer: isPublic ? undefined : this.authorizer,
        requestValidator: validator,
        requestParameters,
        requestModels,
      });
      if (isPublic) {
        Validations.of(method).acknowledge(
          { id: 'AwsSolutions-APIG4', reason: `${route.method} ${route.path} is public by the manifest (auth: 'public').` },
          { id: 'AwsSolutions-COG4', reason: `${route.method} ${route.path} is public by the manifest (auth: 'public').` },
        );
      }
      methods.set(route.id, method);
    }
    this.methods = methods;

    // One preflight per resource that has methods, answered by API Gateway (no function, no authorizer).
    const methodsByPath = new Map<string, string[]>();
    for (const route of props.routes) methodsByPath.set(route.path, [...(methodsByPath.get(route.path) ?? []), route.method]);
    const preflights = new Map<string, apigw.Method>();
    for (const [path, pathMethods] of methodsByPath) {
      const preflight = this.restApi.root.resourceForPath(path).addMethod(
        'OPTIONS',
        new apigw.MockIntegration({
          requestTemplates: { 'application/json': '{"statusCode": 204}' },
          integrationResponses: [{ statusCode: '204', responseTemplates: { 'application/json': preflightTemplate(corsOrigins, pathMethods) } }],
        }),
        {
          authorizationType: apigw.AuthorizationType.NONE,
          methodResponses: [
            {
              statusCode: '204',
              responseParameters: Object.fromEntries(
                ['Access-Control-Allow-Origin', 'Access-Control-Allow-Methods', 'Access-Control-Allow-Headers', 'Access-Control-Max-Age', 'Vary']
                  .map((name) => [`method.response.header.${name}`, false]),
              ),
            },
          ],
        },
      );
      Validations.of(preflight).acknowledge(
        { id: 'AwsSolutions-APIG4', reason: 'A CORS preflight carries no credentials by the CORS protocol; it runs no function and reveals only the CORS policy.' },
        { id: 'AwsSolutions-COG4', reason: 'A CORS preflight carries no credentials by the CORS protocol; it runs no function and reveals only the CORS policy.' },
      );
      preflights.set(path, preflight);
    }
    this.preflights = preflights;

    if (props.waf) {
      this.webAcl = new wafv2.CfnWebACL(this, 'WebAcl', {
        scope: 'REGIONAL',
        defaultAction: { allow: {} },
        visibilityConfig: { cloudWatchMetricsEnabled: true, metricName: 'api', sampledRequestsEnabled: true },
        rules: [
          {
            name: 'RatePerIp',
            priority: 0,
            action: { block: {} },
            statement: { rateBasedStatement: { limit: props.waf.requestsPer5MinPerIp, aggregateKeyType: 'IP' } },
            visibilityConfig: { cloudWatchMetricsEnabled: true, metricName: 'rate-per-ip', sampledRequestsEnabled: true },
          },
          {
            // Per tenant where WAF allows it: every tenant path starts /api/{tenantId}/, but a rate-based
            // key cannot take one path segment (custom keys take the whole URI path, and no text
            // transformation cuts it). Aggregating on the normalised path makes each tenant's collection
            // routes (/api/{tenantId}/documents, /usage-events, /billing, …: where a flood lands) a
            // bucket of their own, so a flooding tenant is blocked at the edge without counting against
            // any other tenant; the exact per-tenant, per-plan rate stays the SQL token bucket's.
            name: 'RatePerTenantPath',
            priority: 1,
            action: { block: {} },
            statement: {
              rateBasedStatement: {
                limit: props.waf.requestsPerMinutePerPath,
                evaluationWindowSec: 60,
                aggregateKeyType: 'CUSTOM_KEYS',
                customKeys: [{ uriPath: { textTransformations: PATH_KEY_TRANSFORMATIONS } }],
                scopeDownStatement: {
                  byteMatchStatement: {
                    fieldToMatch: { uriPath: {} },
                    positionalConstraint: 'CONTAINS',
                    searchString: '/api/',
                    textTransformations: PATH_KEY_TRANSFORMATIONS,
                  },
                },
              },
            },
            visibilityConfig: { cloudWatchMetricsEnabled: true, metricName: 'rate-per-tenant-path', sampledRequestsEnabled: true },
          },
        ],
      });
      new wafv2.CfnWebACLAssociation(this, 'WebAclAssociation', {
        resourceArn: this.restApi.deploymentStage.stageArn,
        webAclArn: this.webAcl.attrArn,
      });
    }
  }
}
