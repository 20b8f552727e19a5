import { spawnSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { collectBytes, type Finished } from '../../../tools/test-support/index.js';
import {
  type Arch,
  buildStubElf,
  type Launched,
  type LaunchOptions,
  launch,
} from '../src/index.js';

/** The absolute path of a command on PATH, or undefined. */
export function commandPath(command: string): string | undefined {
  const result = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', command], { encoding: 'utf8' });
  const path = result.stdout.trim();
  return result.status === 0 && path.startsWith('/') ? path : undefined;
}

/** The qemu-user commands that run code of each architecture. */
export const QEMU: Record<Arch, readonly string[]> = {
  x86_64: ['qemu-x86_64-static', 'qemu-x86_64'],
  aarch64: ['qemu-aarch64-static', 'qemu-aarch64'],
};

/** The exec stub of each architecture as an executable file in `dir` (each written once). */
export function stubFiles(dir: string): (arch: Arch) => string {
  const paths = new Map<Arch, string>();
  return (arch) => {
    let path = paths.get(arch);
    if (!path) {
      path = join(dir, `stub-${arch}`);
      writeFileSync(path, buildStubElf(arch));
      chmodSync(path, 0o755);
      paths.set(arch, path);
    }
    return path;
  };
}

/** Launches, releases and waits for the exit. */
export async function launchAndWait(
  options: LaunchOptions,
  beforeRelease?: (launched: Launched) => void | Promise<void>,
): Promise<Finished<Buffer>> {
  const launched = launch(options);
  const finished = collectBytes(launched.child);
  if (beforeRelease) {
    await launched.ready;
    await beforeRelease(launched);
  }
  await launched.release();
  return finished;
}
