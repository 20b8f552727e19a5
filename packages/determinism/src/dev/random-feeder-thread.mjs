// The feeder thread's entry when the random module runs from its TypeScript
// sources (under vitest): register the workspace's .ts loader (the dispatch
// package's), then run the real entry.
import '../../../dispatch/src/dev/register.mjs';

await import('../random-feeder-thread.ts');
