/**
 * What must never be in a log line: a token (a JWT, `eyJ…`), an email address, a person's name, a
 * presigned URL (its `X-Amz-Signature` / `X-Amz-Credential` / `X-Amz-Security-Token`). The e2e tier
 * captures every line its stacks write and scans them with this (test/setup/e2e-log-scan.ts).
 */

/** One offending line and what was found in it. */
export interface SecretFinding {
  readonly kind: 'token' | 'email' | 'name' | 'presigned URL';
  readonly line: string;
}

const PATTERNS: readonly [SecretFinding['kind'], RegExp][] = [
  // A JWT's header and payload are base64url JSON objects: both start with `eyJ` ("{\"").
  ['token', /eyJ[A-Za-z0-9_-]{6,}\.eyJ[A-Za-z0-9_-]{6,}/],
  ['token', /\bBearer\s+[A-Za-z0-9._~+/-]{16,}/i],
  ['email', /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/],
  ['presigned URL', /X-Amz-(?:Signature|Credential|Security-Token)/i],
];

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Every line of `lines` that holds a token, an email, a presigned URL or one of `names` (people's names
 * the suite sent, matched as whole words, case-sensitively).
 */
export function findSecrets(lines: readonly string[], names: Iterable<string> = []): SecretFinding[] {
  const namePatterns = [...new Set(names)].filter((n) => n.trim().length >= 2).map((n) => new RegExp(`(?<![A-Za-z0-9])${escape(n)}(?![A-Za-z0-9])`));
  const findings: SecretFinding[] = [];
  for (const line of lines) {
    for (const [kind, pattern] of PATTERNS) {
      if (pattern.test(line)) findings.push({ kind, line });
    }
    if (namePatterns.some((p) => p.test(line))) findings.push({ kind: 'name', line });
  }
  return findings;
}

/**
 * People's names in a JSON request body: the `name` of every object that also has an `email` (a
 * member, a tenant's first admin). Document and tenant names are not people's.
 */
export function personNamesIn(body: unknown): string[] {
  const found: string[] = [];
  const visit = (value: unknown) => {
    if (Array.isArray(value)) value.forEach(visit);
    else if (value !== null && typeof value === 'object') {
      const record = value as Record<string, unknown>;
      if (typeof record.email === 'string' && typeof record.name === 'string') found.push(record.name);
      Object.values(record).forEach(visit);
    }
  };
  visit(body);
  return found;
}
