/**
 * STS (the Query protocol: a form-encoded POST, an XML answer) on the shared small client
 * (aws-client.ts: SigV4, the function's own credentials from the environment, the SDK's retries,
 * timeouts, X-Ray): `AssumeRole`, the one call that gets a tenant's scoped credentials
 * (storage-credentials.ts), in place of `@aws-sdk/client-sts`.
 *
 * It does what the SDK's client does for the call; a unit test proves it against the SDK itself
 * (test/unit/aws-s3.test.ts): the same body (`Action=AssumeRole&Version=2011-06-15&…`, members in the
 * model's order), headers and signature; the same output (`Credentials.Expiration` a Date,
 * `PackedPolicySize` a number); the same errors (`ErrorResponse/Error/Code` as `name`).
 */
import { AwsClient, escapeUri, type AwsClientOptions, type Output } from './aws-client';
import { child, present, textOf, xmlDate, xmlNumber, xmlReader } from './aws-xml';

export type StsClientOptions = Omit<AwsClientOptions, 'protocol' | 'clientName' | 'signingName' | 'endpointPrefix'>;

export interface AssumeRoleInput {
  readonly RoleArn: string;
  readonly RoleSessionName: string;
  readonly PolicyArns?: readonly { readonly arn?: string }[];
  readonly Policy?: string;
  readonly DurationSeconds?: number;
  readonly Tags?: readonly { readonly Key: string; readonly Value: string }[];
  readonly TransitiveTagKeys?: readonly string[];
  readonly ExternalId?: string;
  readonly SerialNumber?: string;
  readonly TokenCode?: string;
  readonly SourceIdentity?: string;
}

export interface AssumeRoleOutput {
  readonly Credentials?: { AccessKeyId?: string; SecretAccessKey?: string; SessionToken?: string; Expiration?: Date };
  readonly AssumedRoleUser?: { AssumedRoleId?: string; Arn?: string };
  readonly PackedPolicySize?: number;
  readonly SourceIdentity?: string;
}

/** The form fields of an AssumeRole, in the order the SDK's serializer writes them. */
function assumeRoleForm(input: AssumeRoleInput): [string, string][] {
  const fields: [string, string | number | undefined][] = [
    ['Action', 'AssumeRole'],
    ['Version', '2011-06-15'],
    ['RoleArn', input.RoleArn],
    ['RoleSessionName', input.RoleSessionName],
    ...(input.PolicyArns ?? []).map((p, i): [string, string | undefined] => [`PolicyArns.member.${i + 1}.arn`, p.arn]),
    ['Policy', input.Policy],
    ['DurationSeconds', input.DurationSeconds],
    ...(input.Tags ?? []).flatMap((t, i): [string, string][] => [[`Tags.member.${i + 1}.Key`, t.Key], [`Tags.member.${i + 1}.Value`, t.Value]]),
    ...(input.TransitiveTagKeys ?? []).map((k, i): [string, string] => [`TransitiveTagKeys.member.${i + 1}`, k]),
    ['ExternalId', input.ExternalId],
    ['SerialNumber', input.SerialNumber],
    ['TokenCode', input.TokenCode],
    ['SourceIdentity', input.SourceIdentity],
  ];
  return fields.filter((f): f is [string, string | number] => f[1] !== undefined).map(([k, v]) => [k, String(v)]);
}

const parseAssumeRole = xmlReader((root): AssumeRoleOutput => {
  const result = child(root, 'AssumeRoleResult');
  const credentials = child(result, 'Credentials');
  const user = child(result, 'AssumedRoleUser');
  return present({
    Credentials:
      credentials &&
      present({
        AccessKeyId: textOf(credentials, 'AccessKeyId'),
        SecretAccessKey: textOf(credentials, 'SecretAccessKey'),
        SessionToken: textOf(credentials, 'SessionToken'),
        Expiration: xmlDate(credentials, 'Expiration'),
      }),
    AssumedRoleUser: user && present({ AssumedRoleId: textOf(user, 'AssumedRoleId'), Arn: textOf(user, 'Arn') }),
    PackedPolicySize: xmlNumber(result, 'PackedPolicySize'),
    SourceIdentity: textOf(result, 'SourceIdentity'),
  });
}, { unknownMessage: 'Unknown' });

export class StsClient extends AwsClient {
  constructor(options: StsClientOptions) {
    super({ ...options, protocol: 'aws-sts', clientName: 'STSClient', signingName: 'sts' });
  }

  assumeRole(input: AssumeRoleInput): Promise<Output<AssumeRoleOutput>> {
    const body = assumeRoleForm(input).map(([k, v]) => `${escapeUri(k)}=${escapeUri(v)}`).join('&');
    const request = { method: 'POST', path: this.endpoint.pathname || '/', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body };
    return this.invoke('AssumeRole', input, request, parseAssumeRole);
  }
}
