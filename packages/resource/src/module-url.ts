/**
 * The process-limit handler module, for `Supervisor.start({ modules: [{
 * module: PROCESS_LIMIT_MODULE }] })` of @sandlock/dispatch. Beside this
 * package's entry: dist/process-limit.js built, src/process-limit.ts when run
 * from the sources (vitest).
 */
export const PROCESS_LIMIT_MODULE: URL = new URL(
  import.meta.url.endsWith('.ts') ? './process-limit.ts' : './process-limit.js',
  import.meta.url,
);
