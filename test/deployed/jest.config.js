/**
 * `npm run test:deployed`: smoke tests against a deployed environment with real AWS credentials. Not part
 * of `npm test` (the main jest.config.js matches only test/{unit,db,integration,e2e,infra}); no emulator.
 */
/** @type {import('jest').Config} */
module.exports = {
  rootDir: '../..',
  testEnvironment: 'node',
  roots: ['<rootDir>/test/deployed'],
  testMatch: ['<rootDir>/test/deployed/**/*.deployed.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.json', diagnostics: false }],
  },
  moduleFileExtensions: ['ts', 'js', 'json'],
  testTimeout: 60_000,
  maxWorkers: 1,
};
