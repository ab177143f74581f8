/**
 * One Jest run for every tier under test/ (unit, db, integration, e2e, infra, fault). The global setup starts
 * what the tiers need (embedded Postgres 17 and the AWS emulator) unless DATABASE_URL /
 * AWS_ENDPOINT_URL point elsewhere. TypeScript is compiled by ts-jest (TypeScript 5.9, transpile only;
 * `tsc --noEmit` type-checks the whole project first in `npm test`).
 */
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['<rootDir>/test/{unit,db,integration,e2e,infra,fault}/**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.json', diagnostics: false }],
  },
  moduleFileExtensions: ['ts', 'js', 'json'],
  globalSetup: '<rootDir>/test/setup/global-setup.ts',
  globalTeardown: '<rootDir>/test/setup/global-teardown.ts',
  setupFiles: ['<rootDir>/test/setup/env.ts'],
  // e2e files: every log line they produce is scanned for tokens, emails, names and presigned URLs.
  setupFilesAfterEnv: ['<rootDir>/test/setup/e2e-log-scan.ts'],
  testTimeout: 60_000,
  maxWorkers: 2,
  // A worker whose tests closed everything still needs its event loop to drain and the process to exit:
  // measured at 2.3–3.8 s on this 2-core machine under a load average of 20, beyond Jest's default 500 ms,
  // after which it is killed and "failed to exit gracefully" is printed. A worker that truly leaks a handle
  // (an open socket, an un-unref'd timer) still never exits and is still reported, 10 s later.
  workerGracefulExitTimeout: 10_000,
  reporters: ['default', '<rootDir>/test/setup/summary-reporter.js'],
};
