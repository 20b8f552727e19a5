// A sandbox with a root (the chroot module): the policy as the host sees
// it, for Landlock and the launch, and the program found inside the root.
import { realpathSync } from 'node:fs';
import { type ExecFile, execFileInRoot, hostPaths, Root } from '@sandlock/chroot';
import { pathWithin } from '@sandlock/sys';
import { CommandError } from './environment.js';
import { SandboxError } from './errors.js';
import type { Policy } from './policy.js';

export interface ChrootStart {
  /** The policy with host paths (Landlock, the launch's cwd) and the mounts the module serves. */
  policy: Policy;
  exec: ExecFile;
}

export function chrootStart(
  policy: Policy,
  argv: readonly string[],
  env: Record<string, string>,
): ChrootStart {
  const root = realpathSync(policy.chroot!);
  if (policy.workdir !== null && !pathWithin(realpathSync(policy.workdir), root)) {
    // The cow module walks the sandbox's paths from the root: a workdir elsewhere is out of its sight.
    throw new SandboxError(
      `sandlock: the workdir ${policy.workdir} is not inside the chroot ${policy.chroot}`,
      'chroot',
    );
  }
  let host: ReturnType<typeof hostPaths>;
  try {
    host = hostPaths(policy);
  } catch (error) {
    throw new SandboxError((error as Error).message, 'chroot');
  }
  const opened = Root.open(policy.chroot!, host.fsMount);
  try {
    const exec = execFileInRoot(
      opened,
      argv[0]!,
      argv,
      env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      policy.cwd ?? '/',
    );
    return { policy: host.policy as Policy, exec };
  } catch (error) {
    const errno = (error as { errno?: number }).errno;
    throw new CommandError(
      `sandlock: ${argv[0]}: ${(error as Error).message} (inside the root)`,
      errno === 2 ? 'ENOENT' : 'EACCES',
    );
  } finally {
    opened.close();
  }
}
