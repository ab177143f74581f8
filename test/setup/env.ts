/**
 * Per-worker environment: the emulator needs some credentials and a region; these are not secrets.
 * Data-access tests read TEST_RUNTIME_DATABASE_URL (app_runtime), set by the global setup.
 */
process.env.AWS_ACCESS_KEY_ID ??= 'testing';
process.env.AWS_SECRET_ACCESS_KEY ??= 'testing';
process.env.AWS_REGION ??= 'us-east-1';
process.env.POWERTOOLS_DEV ??= 'false';
process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
// The SDK's notice that releases from 2027 need Node 22: known (Lambdas run Node 22), not news in every test.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
