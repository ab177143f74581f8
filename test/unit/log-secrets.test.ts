/**
 * The log scan of the e2e tier (test/support/log-secrets.ts) finds each kind of secret in a log line
 * and passes the lines the wrapper writes.
 */
import { findSecrets, personNamesIn } from '../support/log-secrets';

const clean = JSON.stringify({
  level: 'INFO', message: 'request', correlation_id: 'order-42:retry.1', request_id: '6f1c2d1e-7a38-4b43-9d9c-0a9b2f3c4d5e',
  route: 'GET /api/{tenantId}/documents', tenant_id: 'acme', user_id: '0b0d6a0e-3f9e-4bb1-9a0e-8d2b1c3a4f5e', role: 'user',
  status: 200, duration_ms: 12.5, xray_trace_id: '1-6756a1b2-0123456789abcdef01234567',
});
const line = (extra: Record<string, unknown>) => JSON.stringify({ ...JSON.parse(clean), ...extra });
const jwt = 'eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiIxMjMiLCJ0b2tlbl91c2UiOiJpZCJ9.c2lnbmF0dXJl';

describe('the log scan for secrets', () => {
  it('passes a request line of the wrapper', () => {
    expect(findSecrets([clean], ['Ada Lovelace'])).toEqual([]);
  });

  it('finds a token, alone or as a bearer header', () => {
    expect(findSecrets([line({ token: jwt })]).map((f) => f.kind)).toEqual(['token']);
    expect(findSecrets([line({ authorization: `Bearer ${jwt}` })]).map((f) => f.kind)).toContain('token');
  });

  it('finds an email address', () => {
    expect(findSecrets([line({ invited: 'ada@acme.example' })]).map((f) => f.kind)).toEqual(['email']);
  });

  it('finds a presigned URL by its signature or credential', () => {
    const url = 'https://bucket.s3.amazonaws.com/tenants/acme/documents/x?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=abc';
    expect(findSecrets([line({ upload: url })]).map((f) => f.kind)).toEqual(['presigned URL']);
  });

  it('finds a name the suite sent, as a whole word only', () => {
    expect(findSecrets([line({ detail: 'renamed to Ada Lovelace' })], ['Ada Lovelace']).map((f) => f.kind)).toEqual(['name']);
    expect(findSecrets([line({ detail: 'Adam' })], ['Ada'])).toEqual([]);
  });

  it('takes people\'s names from request bodies: objects with an email, not documents or tenants', () => {
    const body = { id: 'acme2', name: 'Acme Two', planId: 'pro', admin: { email: 'a@acme2.example', name: 'First Admin' } };
    expect(personNamesIn(body)).toEqual(['First Admin']);
    expect(personNamesIn({ name: 'report.txt', contentType: 'text/plain' })).toEqual([]);
  });
});
