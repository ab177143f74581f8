import { randomBytes } from 'node:crypto';
import { keysFrom } from '../../../functions/core/pii';

describe('tenant PII keys', () => {
  const key = randomBytes(32);
  const acme = keysFrom('acme', key);

  it('round-trips a value and never stores the plaintext', () => {
    const ciphertext = acme.encrypt('email', 'alice@acme.example');
    expect(ciphertext.toString('utf8')).not.toContain('alice');
    expect(acme.decrypt('email', ciphertext)).toBe('alice@acme.example');
  });

  it('does not decrypt a ciphertext moved to another tenant or field, or tampered with', () => {
    const ciphertext = acme.encrypt('email', 'alice@acme.example');
    expect(() => keysFrom('globex', key).decrypt('email', ciphertext)).toThrow();
    expect(() => acme.decrypt('name', ciphertext)).toThrow();
    const tampered = Buffer.from(ciphertext);
    tampered[tampered.length - 1]! ^= 1;
    expect(() => acme.decrypt('email', tampered)).toThrow();
  });

  it('gives equal blind indexes for equal emails (case and spaces aside), distinct ones across tenants', () => {
    expect(acme.blindIndex('email', ' Alice@ACME.example')).toEqual(acme.blindIndex('email', 'alice@acme.example'));
    expect(acme.blindIndex('email', 'bob@acme.example')).not.toEqual(acme.blindIndex('email', 'alice@acme.example'));
    expect(keysFrom('acme', randomBytes(32)).blindIndex('email', 'alice@acme.example')).not.toEqual(
      acme.blindIndex('email', 'alice@acme.example'),
    );
  });
});
