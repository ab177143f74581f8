/**
 * Prints the closing line CI reads: `tests: N passed, M failed` (Jest has no such line of its own).
 * A suite that fails to run at all counts as one failed test, so a broken file can never pass silently.
 */
class SummaryReporter {
  onRunComplete(_contexts, results) {
    const failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
    const line = `tests: ${results.numPassedTests} passed, ${failed} failed`;
    require('node:fs').writeFileSync(require('node:path').join(__dirname, '..', '..', '.jest-summary'), line + '\n');
    process.stdout.write(`\n${line}\n`);
  }
}
module.exports = SummaryReporter;
