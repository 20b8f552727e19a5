import type { Reporter, TestModule } from 'vitest/node';

/**
 * Ends every run with one plain line, `Summary: N passed, N failed[, N skipped]`,
 * that CI logs can be read by without parsing vitest's coloured output.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else skipped++;
      }
      if (module.state() === 'failed' && module.children.size === 0) failed++;
    }
    const tail = skipped > 0 ? `, ${skipped} skipped` : '';
    // Printed at exit, after vitest's own summary, so that it is the last line.
    process.once('exit', () => {
      process.stdout.write(`\nSummary: ${passed} passed, ${failed} failed${tail}\n`);
    });
  }
}
