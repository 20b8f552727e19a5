import { existsSync } from 'node:fs';
// Imported by path, not by package name: `sandlock` will depend on this
// package, and a dependency back would be a cycle.
import {
  parsePolicy,
  prepareConfinement,
  Sandbox,
  type SandboxProcess,
} from '../../sandlock/src/index.js';

export { parsePolicy, prepareConfinement, Sandbox, type SandboxProcess };

/** The system directories a dynamically linked program needs, where they exist. */
export const SYSTEM_READ = ['/usr', '/lib', '/lib64', '/bin', '/etc'].filter((path) =>
  existsSync(path),
);

/** A builder that can already run /bin/sh, python3, node and coreutils. */
export function systemBuilder() {
  return Sandbox.builder().fsRead(...SYSTEM_READ);
}
