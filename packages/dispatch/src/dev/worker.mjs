// The worker thread's entry when the supervisor runs from its TypeScript
// sources (under vitest): register the .ts loader, then run the real entry.
import './register.mjs';

await import('../worker.ts');
