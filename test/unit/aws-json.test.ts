/**
 * The small AWS JSON-protocol client (functions/core/aws-json.ts) against the SDK's own clients, which
 * stay dev dependencies as the reference. Both call one local HTTP server that records every request and
 * answers what the test says, so what goes on the wire and what comes back can be compared:
 *  - SigV4: the SDK's request, re-signed by `signatureOf`, has the SDK's signature byte for byte (with and
 *    without a session token), for every operation the routes call;
 *  - the request: same method, path, body bytes and protocol headers (content type, target, query mode,
 *    payload hash, session token) for the same input;
 *  - answers: the same output, the same error (name, message, $fault, $metadata), the same retries;
 *  - timeouts, missing credentials, and X-Ray's own v3 instrumentation, which records the same
 *    subsegment for both.
 */
import { createHash } from 'node:crypto';
import { KMSClient, DecryptCommand, GenerateDataKeyCommand } from '@aws-sdk/client-kms';
import {
  AdminCreateUserCommand,
  AdminDeleteUserCommand,
  AdminDisableUserCommand,
  AdminEnableUserCommand,
  AdminGetUserCommand,
  AdminSetUserPasswordCommand,
  AdminUpdateUserAttributesCommand,
  CognitoIdentityProviderClient,
} from '@aws-sdk/client-cognito-identity-provider';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { addUserAgentMiddleware } from '@aws-lambda-powertools/commons';
import { AwsJsonClient, regionalEndpoint, sanitizeErrorCode, signatureOf } from '../../functions/core/aws-json';
import { cognitoClient } from '../../functions/core/cognito';
import { sqsClient } from '../../functions/core/job-queue';
import { kmsClient } from '../../functions/core/pii';
import { comparableSubsegment, CREDENTIAL_CASES, recordingEndpoint, startedForSuite, TRACE_HEADER, withEnvironment, withToken, xraySubsegmentOf, type Answer, type Recorded } from '../support/aws-endpoint';

/** The JSON services' endpoint: answers carry their content type and a request id. */
function server() {
  return recordingEndpoint((n) => ({ 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': `req-${n}` }), { status: 200, body: '{}' });
}

const region = 'eu-west-1';
const blob = Buffer.from('wrapped-data-key-bytes');

/** Every call the routes make, as the SDK command and as the small client's operation and input. */
const calls = [
  {
    service: 'kms',
    sdk: (c: object) => new KMSClient(c),
    ours: kmsClient,
    command: new GenerateDataKeyCommand({ KeyId: 'alias/pii', KeySpec: 'AES_256', EncryptionContext: { tenant_id: 'acme' } }),
    operation: 'GenerateDataKey',
    input: { KeyId: 'alias/pii', EncryptionContext: { tenant_id: 'acme' }, KeySpec: 'AES_256' },
  },
  {
    service: 'kms',
    sdk: (c: object) => new KMSClient(c),
    ours: kmsClient,
    command: new DecryptCommand({ CiphertextBlob: blob, KeyId: 'alias/pii', EncryptionContext: { tenant_id: 'acme' } }),
    operation: 'Decrypt',
    input: { CiphertextBlob: blob.toString('base64'), EncryptionContext: { tenant_id: 'acme' }, KeyId: 'alias/pii' },
  },
  ...(
    [
      [AdminGetUserCommand, 'AdminGetUser', { UserPoolId: 'eu-west-1_Pool', Username: 'a@acme.example' }],
      [
        AdminCreateUserCommand,
        'AdminCreateUser',
        {
          UserPoolId: 'eu-west-1_Pool',
          Username: 'a@acme.example',
          UserAttributes: [{ Name: 'email', Value: 'a@acme.example' }, { Name: 'custom:tenant_id', Value: 'acme' }],
          DesiredDeliveryMediums: ['EMAIL'],
        },
      ],
      [AdminSetUserPasswordCommand, 'AdminSetUserPassword', { UserPoolId: 'eu-west-1_Pool', Username: 'sub-1', Password: 'Pa55-word!', Permanent: true }],
      [AdminUpdateUserAttributesCommand, 'AdminUpdateUserAttributes', { UserPoolId: 'eu-west-1_Pool', Username: 'sub-1', UserAttributes: [{ Name: 'custom:role', Value: 'admin' }] }],
      [AdminDisableUserCommand, 'AdminDisableUser', { UserPoolId: 'eu-west-1_Pool', Username: 'sub-1' }],
      [AdminEnableUserCommand, 'AdminEnableUser', { UserPoolId: 'eu-west-1_Pool', Username: 'sub-1' }],
      [AdminDeleteUserCommand, 'AdminDeleteUser', { UserPoolId: 'eu-west-1_Pool', Username: 'sub-1' }],
    ] as const
  ).map(([Command, operation, input]) => ({
    service: 'cognito-idp',
    sdk: (c: object) => new CognitoIdentityProviderClient(c),
    ours: cognitoClient,
    command: new (Command as new (i: object) => object)(input),
    operation,
    input,
  })),
  {
    service: 'sqs',
    sdk: (c: object) => new SQSClient(c),
    ours: sqsClient,
    command: new SendMessageCommand({ QueueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/jobs', MessageBody: '{"jobId":"x"}' }),
    operation: 'SendMessage',
    input: { QueueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/jobs', MessageBody: '{"jobId":"x"}' },
  },
];

/** The answer each call gets in the wire comparison (SQS's carries the body's MD5, as the SDK checks). */
function okAnswer(operation: string): Answer {
  if (operation === 'SendMessage') return { status: 200, body: JSON.stringify({ MD5OfMessageBody: createHash('md5').update('{"jobId":"x"}').digest('hex'), MessageId: 'm-1' }) };
  return { status: 200, body: '{}' };
}

describe('the AWS JSON-protocol client', () => {
  const endpoint = startedForSuite(server());

  describe.each(CREDENTIAL_CASES)('signs and sends what the SDK does, %s', (_label, credentials) => {
    it.each(calls.map((c) => [c.operation, c] as const))('%s', async (_op, call) => {
      endpoint.answer(okAnswer(call.operation));
      const sdk = call.sdk({ region, endpoint: endpoint.url, credentials, maxAttempts: 1 }) as { send(c: object): Promise<unknown>; destroy(): void };
      const ours = call.ours({ region, endpoint: endpoint.url, credentials, maxAttempts: 1 });
      try {
        await sdk.send(call.command);
        await ours.call(call.operation, call.input);
      } finally {
        sdk.destroy();
        ours.destroy();
      }
      const [theirs, mine] = endpoint.requests as [Recorded, Recorded];
      expect(endpoint.requests).toHaveLength(2);

      // The SDK's request re-signed here has the SDK's signature, byte for byte.
      const { authorization, ...signed } = theirs.headers;
      expect(authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\//);
      expect(signatureOf({ method: theirs.method, path: theirs.path, headers: signed, body: theirs.body }, credentials, region, call.service)).toBe(authorization);

      // The same request on the wire, apart from the SDK's own bookkeeping headers.
      expect(mine.method).toBe(theirs.method);
      expect(mine.path).toBe(theirs.path);
      expect(mine.body.toString('utf8')).toBe(theirs.body.toString('utf8'));
      for (const name of ['content-type', 'x-amz-target', 'x-amzn-query-mode', 'content-length', 'host', 'x-amz-content-sha256', 'x-amz-security-token']) {
        expect([name, mine.headers[name]]).toEqual([name, theirs.headers[name]]);
      }
      // Ours verifies the same way: its signature over what it sent, with its signed headers.
      const { authorization: ourAuthorization, ...ourSigned } = mine.headers;
      expect(signatureOf({ method: mine.method, path: mine.path, headers: ourSigned, body: mine.body }, credentials, region, call.service)).toBe(ourAuthorization);
      expect(ourAuthorization).toContain(`/${region}/${call.service}/aws4_request, SignedHeaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date;`);
    });
  });

  it('answers the same output as the SDK, blobs as the base64 the wire carries', async () => {
    const plaintext = Buffer.alloc(32, 7);
    endpoint.answer({ status: 200, body: JSON.stringify({ CiphertextBlob: blob.toString('base64'), Plaintext: plaintext.toString('base64'), KeyId: 'arn:aws:kms:k' }) });
    const sdk = new KMSClient({ region, endpoint: endpoint.url, credentials: withToken });
    const ours = kmsClient({ region, endpoint: endpoint.url, credentials: withToken });
    const theirs = await sdk.send(new GenerateDataKeyCommand({ KeyId: 'k', KeySpec: 'AES_256' }));
    const mine = await ours.call<{ CiphertextBlob: string; Plaintext: string; KeyId: string }>('GenerateDataKey', { KeyId: 'k', KeySpec: 'AES_256' });
    sdk.destroy();
    ours.destroy();
    expect(Buffer.from(mine.Plaintext, 'base64')).toEqual(Buffer.from(theirs.Plaintext!));
    expect(Buffer.from(mine.CiphertextBlob, 'base64')).toEqual(Buffer.from(theirs.CiphertextBlob!));
    expect(mine.KeyId).toBe(theirs.KeyId);
    expect({ ...mine.$metadata, requestId: 'same' }).toEqual({ ...theirs.$metadata, requestId: 'same' });
  });

  it.each([
    ['a modelled error', { status: 400, body: '{"__type":"com.amazonaws.kms#InvalidCiphertextException","message":"bad ciphertext"}' }],
    ['an error named in the header', { status: 400, body: '{"message":"User does not exist."}', headers: { 'x-amzn-errortype': 'UserNotFoundException:http://internal.amazon.com/' } }],
    ['an error with Message', { status: 400, body: '{"__type":"AccessDeniedException","Message":"not allowed"}' }],
  ])('fails as the SDK does on %s', async (_label, answer) => {
    endpoint.answer(answer);
    const sdk = new KMSClient({ region, endpoint: endpoint.url, credentials: withToken, maxAttempts: 2 });
    const ours = kmsClient({ region, endpoint: endpoint.url, credentials: withToken, maxAttempts: 2 });
    const theirs = (await sdk.send(new DecryptCommand({ CiphertextBlob: blob })).catch((e: unknown) => e)) as Record<string, unknown>;
    const mine = (await ours.call('Decrypt', { CiphertextBlob: blob.toString('base64') }).catch((e: unknown) => e)) as Record<string, unknown>;
    sdk.destroy();
    ours.destroy();
    expect(mine).toBeInstanceOf(Error);
    const shape = (e: Record<string, unknown>) => ({ name: e.name, message: e.message, $fault: e.$fault, $metadata: { ...(e.$metadata as object), requestId: undefined } });
    expect(shape(mine)).toEqual(shape(theirs));
    // Not retried: a client error.
    expect(endpoint.requests).toHaveLength(2);
  });

  it('retries a throttled or failing call as the SDK does, and reports the attempts', async () => {
    for (const answer of [
      { status: 500, body: '{"__type":"KMSInternalException","message":"try again"}' },
      { status: 400, body: '{"__type":"ThrottlingException","message":"slow down"}' },
    ]) {
      endpoint.requests.length = 0;
      endpoint.answer(answer, answer, { status: 200, body: '{"KeyId":"k"}' });
      const sdk = new KMSClient({ region, endpoint: endpoint.url, credentials: withToken, maxAttempts: 2 });
      const theirs = (await sdk.send(new DecryptCommand({ CiphertextBlob: blob })).catch((e: unknown) => e)) as Record<string, unknown>;
      sdk.destroy();
      const sdkRequests = endpoint.requests.length;
      endpoint.requests.length = 0;
      endpoint.answer(answer, answer, { status: 200, body: '{"KeyId":"k"}' });
      const ours = kmsClient({ region, endpoint: endpoint.url, credentials: withToken, maxAttempts: 2 });
      const failed = (await ours.call('Decrypt', { CiphertextBlob: blob.toString('base64') }).catch((e: unknown) => e)) as Record<string, unknown>;
      ours.destroy();
      // Two failures within two attempts: both fail the same way after the same number of requests.
      expect(failed.name).toBe(JSON.parse(answer.body).__type);
      expect(failed.name).toBe(theirs.name);
      expect(failed.$metadata).toMatchObject({ httpStatusCode: answer.status, attempts: 2 });
      expect(theirs.$metadata).toMatchObject({ httpStatusCode: answer.status, attempts: 2 });
      expect(sdkRequests).toBe(2);
      expect(endpoint.requests).toHaveLength(sdkRequests);
    }
  });

  it('succeeds on the second attempt after a transient failure', async () => {
    endpoint.answer({ status: 503, body: '{"__type":"ServiceUnavailable"}' }, { status: 200, body: '{"KeyId":"k"}' });
    const ours = kmsClient({ region, endpoint: endpoint.url, credentials: withToken, maxAttempts: 2 });
    const out = await ours.call('Decrypt', { CiphertextBlob: 'AA==' });
    ours.destroy();
    expect(out).toMatchObject({ KeyId: 'k', $metadata: { httpStatusCode: 200, attempts: 2 } });
    expect(endpoint.requests).toHaveLength(2);
  });

  it('ends a call the endpoint never answers after requestTimeout, with a TimeoutError', async () => {
    const frozen = server();
    const frozenUrl = await frozen.start();
    frozen.silence();
    const ours = new AwsJsonClient({
      clientName: 'KMSClient', signingName: 'kms', targetPrefix: 'TrentService', jsonVersion: '1.1', region, endpoint: frozenUrl,
      credentials: withToken, maxAttempts: 1, requestHandler: { connectionTimeout: 1_000, requestTimeout: 300, throwOnRequestTimeout: true },
    });
    const started = Date.now();
    const error = (await ours.call('Decrypt', {}).catch((e: unknown) => e)) as Record<string, unknown>;
    ours.destroy();
    await frozen.stop();
    expect(error).toMatchObject({ name: 'TimeoutError', $metadata: { attempts: 1 } });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(frozen.requests).toHaveLength(1);
  });

  it('takes its credentials from the environment alone, and says so as the SDK does when they are missing', async () => {
    await withEnvironment({ AWS_ACCESS_KEY_ID: 'ASIAENVIRONMENT', AWS_SECRET_ACCESS_KEY: 'environment-secret', AWS_SESSION_TOKEN: 'environment-token' }, async () => {
      endpoint.answer({ status: 200, body: '{}' });
      const ours = kmsClient({ region, endpoint: endpoint.url });
      await ours.call('Decrypt', {});
      ours.destroy();
      expect(endpoint.requests[0]!.headers.authorization).toContain('Credential=ASIAENVIRONMENT/');
      expect(endpoint.requests[0]!.headers['x-amz-security-token']).toBe('environment-token');

      delete process.env.AWS_ACCESS_KEY_ID;
      const none = kmsClient({ region, endpoint: endpoint.url });
      await expect(none.call('Decrypt', {})).rejects.toMatchObject({ name: 'CredentialsProviderError', message: 'Unable to find environment variable credentials.' });
      none.destroy();
      expect(endpoint.requests).toHaveLength(1);
    });
  });

  it('resolves the regional endpoints the SDK resolves', async () => {
    expect(regionalEndpoint('kms', 'eu-west-1')).toBe('https://kms.eu-west-1.amazonaws.com');
    expect(regionalEndpoint('cognito-idp', 'us-east-1')).toBe('https://cognito-idp.us-east-1.amazonaws.com');
    expect(regionalEndpoint('sqs', 'cn-north-1')).toBe('https://sqs.cn-north-1.amazonaws.com.cn');
    // The SDK's own resolution, for comparison.
    for (const [client, prefix, r] of [
      [new KMSClient({ region: 'eu-west-1' }), 'kms', 'eu-west-1'],
      [new SQSClient({ region: 'cn-north-1' }), 'sqs', 'cn-north-1'],
      [new CognitoIdentityProviderClient({ region: 'us-east-1' }), 'cognito-idp', 'us-east-1'],
    ] as const) {
      const resolved = await (client.config as unknown as { endpointProvider: (p: object) => { url: URL } }).endpointProvider({ Region: r, UseFIPS: false, UseDualStack: false });
      expect(regionalEndpoint(prefix, r)).toBe(resolved.url.href.replace(/\/$/, ''));
      client.destroy();
    }
    expect(sanitizeErrorCode('aws.protocoltests.restjson#FooError:http://internal.amazon.com/coral/com.amazon.coral.validate/')).toBe('FooError');
  });

  it('takes Powertools\' user-agent middleware as an SDK client does (the tracer adds it before X-Ray\'s), without a warning', async () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      endpoint.answer({ status: 200, body: '{}' });
      const sdk = new KMSClient({ region, endpoint: endpoint.url, credentials: withToken, maxAttempts: 1 });
      const ours = kmsClient({ region, endpoint: endpoint.url, credentials: withToken, maxAttempts: 1 });
      for (const client of [sdk, ours]) {
        addUserAgentMiddleware(client, 'tracer');
        // Twice, as a second capture of the same client would: added once.
        addUserAgentMiddleware(client, 'tracer');
      }
      await sdk.send(new DecryptCommand({ CiphertextBlob: blob }));
      await ours.call('Decrypt', { CiphertextBlob: blob.toString('base64') });
      sdk.destroy();
      ours.destroy();
      expect(warn).not.toHaveBeenCalled();
      const agents = endpoint.requests.map((r) => r.headers['user-agent']);
      expect(agents).toEqual([expect.stringMatching(/ PT\/tracer\/\S+ PTEnv\/NA$/), expect.stringMatching(/^tenant-sovereign-backend aws-json .* PT\/tracer\/\S+ PTEnv\/NA$/)]);
      expect(ours.middlewareStack.identify().filter((n) => n.startsWith('addPowertoolsToUserAgent'))).toHaveLength(1);
    } finally {
      warn.mockRestore();
    }
  });

  it('is captured by X-Ray as the SDK client is: the same subsegment, and the trace header on the request', async () => {
    for (const answer of [
      { status: 200, body: '{"KeyId":"k"}' },
      { status: 400, body: '{"__type":"InvalidCiphertextException","message":"bad"}' },
    ]) {
      endpoint.requests.length = 0;
      endpoint.answer(answer);
      const sdk = new KMSClient({ region, endpoint: endpoint.url, credentials: withToken, maxAttempts: 1 });
      const ours = kmsClient({ region, endpoint: endpoint.url, credentials: withToken, maxAttempts: 1 });
      const theirs = await xraySubsegmentOf(sdk, () => sdk.send(new DecryptCommand({ CiphertextBlob: blob, KeyId: 'k' })));
      const mine = await xraySubsegmentOf(ours, () => ours.call('Decrypt', { CiphertextBlob: blob.toString('base64'), KeyId: 'k' }));
      sdk.destroy();
      ours.destroy();
      expect(comparableSubsegment(mine)).toEqual(comparableSubsegment(theirs));
      expect(mine).toMatchObject({ name: 'KMS', namespace: 'aws', aws: { operation: 'Decrypt', region } });
      expect(endpoint.requests.map((r) => r.headers['x-amzn-trace-id'])).toEqual([expect.stringMatching(TRACE_HEADER), expect.stringMatching(TRACE_HEADER)]);
    }
  });
});
