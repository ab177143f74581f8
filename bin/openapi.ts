/** `npm run openapi`: writes the OpenAPI 3.1 document generated from the route manifest to ./openapi.json. */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { openApiDocument } from '../functions/platform/openapi-document';

const target = path.join(__dirname, '..', 'openapi.json');

void writeFile(target, `${JSON.stringify(openApiDocument(), null, 2)}\n`).then(
  () => process.stdout.write(`wrote ${path.relative(process.cwd(), target) || target}\n`),
  (error: unknown) => {
    process.stderr.write(`could not write ${target}: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
