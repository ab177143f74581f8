/**
 * AWS's JSON protocols (awsJson1_0, awsJson1_1) on the shared small client (aws-client.ts: SigV4, the
 * environment's credentials, the SDK's retries, timeouts, X-Ray): what KMS, Cognito and SQS are called
 * with from the route bundles, in place of the SDK's clients (~180 KiB of minified code per bundle).
 *
 * It does what the SDK client does for these calls; a unit test proves it against the SDK itself
 * (test/unit/aws-json.test.ts):
 *  - the request: `POST /`, `content-type: application/x-amz-json-1.x`, `x-amz-target`, the JSON body, and
 *    SigV4 header signing (both sign `x-amz-content-sha256` and the session token);
 *  - the endpoint: `https://{prefix}.{region}.amazonaws.com` (`.amazonaws.com.cn` in China), or the
 *    configured one (the emulator);
 *  - errors: `name` is the service's error code (`__type` or `x-amzn-errortype`, namespace stripped),
 *    `message`, `$fault`, and `$metadata`;
 *  - credentials, retries, timeouts and X-Ray as every small client (aws-client.ts).
 * Not done (no caller needs it): any operation whose input or output is not plain JSON (blobs are base64
 * strings to the caller; see pii.ts).
 */
import { AwsClient, AwsServiceError, sanitizeErrorCode, type AwsClientOptions, type HttpResponse, type Output, type ResponseMetadata } from './aws-client';

export {
  AwsServiceError,
  regionalEndpoint,
  sanitizeErrorCode,
  signatureOf,
  type AwsCredentialIdentity,
  type AwsServiceOptions,
  type CredentialProvider,
  type Output,
  type ResponseMetadata,
} from './aws-client';

export interface AwsJsonClientOptions extends Omit<AwsClientOptions, 'protocol'> {
  /** `x-amz-target` prefix (`TrentService`). */
  readonly targetPrefix: string;
  readonly jsonVersion: '1.0' | '1.1';
  /** Headers every request of this service carries (SQS: `x-amzn-query-mode`). */
  readonly headers?: Readonly<Record<string, string>>;
}

export class AwsJsonClient extends AwsClient {
  readonly #options: AwsJsonClientOptions;

  constructor(options: AwsJsonClientOptions) {
    super({ ...options, protocol: 'aws-json' });
    this.#options = options;
  }

  /** Calls `operation` (`Decrypt`) with `input`; rejects with the service's error as the SDK would. */
  call<O extends object = Record<string, unknown>>(operation: string, input: object): Promise<Output<O>> {
    const options = this.#options;
    const request = {
      method: 'POST',
      path: this.endpoint.pathname || '/',
      headers: {
        'content-type': `application/x-amz-json-${options.jsonVersion}`,
        'x-amz-target': `${options.targetPrefix}.${operation}`,
        ...options.headers,
      },
      body: JSON.stringify(input),
    };
    return this.invoke(operation, input, request, parseJson<O>);
  }

  /** `send({ operation, input })`: the SDK's method name, so that tools that check for an SDK client find one. */
  send<O extends object = Record<string, unknown>>(command: { readonly operation: string; readonly input: object }): Promise<Output<O>> {
    return this.call<O>(command.operation, command.input);
  }
}

function parseJson<O>(response: HttpResponse, metadata: ResponseMetadata): O {
  const text = response.body.toString('utf8');
  if (response.statusCode >= 200 && response.statusCode < 300) return (text.trim() === '' ? {} : JSON.parse(text)) as O;
  throw serviceError(response.statusCode, response.headers, text, metadata);
}

/** The SDK's awsJson error parsing: the code from `x-amzn-errortype` or the body's `__type` / `code`. */
function serviceError(status: number, headers: Record<string, string>, text: string, metadata: ResponseMetadata): AwsServiceError {
  let body: Record<string, unknown> = {};
  try {
    const parsed = text.trim() === '' ? {} : JSON.parse(text);
    if (parsed && typeof parsed === 'object') body = parsed as Record<string, unknown>;
  } catch {
    // Not JSON (a proxy's page): the status alone names it.
  }
  const raw = headers['x-amzn-errortype'] ?? (typeof body.__type === 'string' ? body.__type : undefined) ?? (typeof body.code === 'string' ? body.code : undefined);
  const name = raw === undefined ? 'UnknownError' : sanitizeErrorCode(raw);
  const message = typeof body.message === 'string' ? body.message : typeof body.Message === 'string' ? body.Message : name;
  return new AwsServiceError(name, message, status >= 500 ? 'server' : 'client', metadata);
}
