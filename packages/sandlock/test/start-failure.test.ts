// A sandbox that cannot start — this process out of descriptors, a full disk
// for the exec stub, a plugin that does not load — rejects with a
// SandboxError naming the step, leaves nothing open and no process behind,
// and the next start succeeds. The host is a child Node process
// (support/start-failure-host.ts), so that this one's limits stay as they are.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { collect } from '../../../tools/test-support/index.js';
import { SandboxError } from '../src/index.js';
import { systemBuilder } from './helpers.js';

const register = fileURLToPath(new URL('../../dispatch/src/dev/register.mjs', import.meta.url));
const host = fileURLToPath(new URL('./support/start-failure-host.ts', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'sandlock-start-failure-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function withoutRuntimeDir(): NodeJS.ProcessEnv {
  const { XDG_RUNTIME_DIR: _, ...rest } = process.env;
  return rest;
}

/** The host's one JSON line, once it has exited 0. */
async function runHost(command: string, args: string[], env: NodeJS.ProcessEnv = process.env) {
  const finished = await collect(spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] }));
  expect(finished, finished.stderr).toMatchObject({ code: 0, signal: null });
  return JSON.parse(finished.stdout.trim().split('\n').at(-1)!);
}

describe('a start that fails', () => {
  it('for want of descriptors is a SandboxError and leaves nothing behind', async () => {
    const runtime = mkdtempSync(join(work, 'runtime-'));
    const seen = await runHost(process.execPath, ['--import', register, host, 'exhaust'], {
      ...process.env,
      XDG_RUNTIME_DIR: runtime,
    });
    const kinds = Object.keys(seen.outcomes);
    expect(kinds.filter((kind) => kind !== 'ok' && !kind.startsWith('SandboxError at '))).toEqual(
      [],
    );
    // The limit was reached: most starts failed.
    expect(kinds.some((kind) => kind.startsWith('SandboxError at '))).toBe(true);
    expect(seen.leaks).toEqual([]);
    expect(seen.after).toEqual(['ok', 'ok']);
    expect(seen.claims).toEqual([]);
  }, 600_000);

  it('for a full disk under the exec stub file is a SandboxError, with no partial file', async (context) => {
    const unshare = spawnSync('unshare', ['--mount', 'true']);
    if (process.getuid?.() !== 0 || unshare.status !== 0) {
      console.warn('skipping: mounting a small tmpfs needs root and unshare(1) --mount');
      context.skip();
    }
    const full = join(work, 'full');
    mkdirSync(full);
    // One page, filled, in a mount namespace of the host's own.
    const script = `mount -t tmpfs -o size=4k tmpfs "$1" && mkdir -m 700 "$1/sandlock" && head -c 4096 /dev/zero > "$1/filler" && shift && exec "$@"`;
    const seen = await runHost(
      'unshare',
      [
        '--mount',
        '--propagation',
        'private',
        'sh',
        '-c',
        script,
        'sh',
        full,
        process.execPath,
      ].concat(['--import', register, host, 'enospc']),
      // The stub goes to $XDG_CACHE_HOME/sandlock without XDG_RUNTIME_DIR; the
      // registry of running sandboxes then to the temporary directory, not full.
      { ...withoutRuntimeDir(), SANDLOCK_STUB: 'file', XDG_CACHE_HOME: full },
    );
    expect(seen.result).toBe('SandboxError at exec stub');
    expect(seen.message).toMatch(/ENOSPC/);
    expect(seen.files).toEqual([]);
    expect(seen.children).toEqual([]);
  }, 120_000);

  it('for a plugin that does not load is a SandboxError', async () => {
    const plugin = join(work, 'not-a-module.mjs');
    writeFileSync(plugin, 'export default 42;\n');
    const sandbox = systemBuilder().plugin(plugin).build();
    const failed = await sandbox.run(['true']).catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(SandboxError);
    expect(failed).toMatchObject({ step: 'supervisor', name: 'SandboxError' });
    expect((failed as Error).cause).toMatchObject({ name: 'ModuleError' });
    expect((await systemBuilder().build().run(['true'])).exitCode).toBe(0);
  });

  it('for a layer store that may not be used is a SandboxError naming fsStorage', async () => {
    const workdir = mkdtempSync(join(work, 'workdir-'));
    // A store others may write to is refused (packages/cow, store.ts).
    const storage = mkdtempSync(join(work, 'store-'));
    chmodSync(storage, 0o777);
    const sandbox = systemBuilder().workdir(workdir).fsStorage(storage).build();
    const failed = await sandbox.run(['true']).catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(SandboxError);
    expect(failed).toMatchObject({ step: 'workdir layer' });
    const prefix = `sandlock: cannot make the workdir's copy-on-write layer in fsStorage ${storage}: `;
    const message = (failed as Error).message;
    expect(message.startsWith(prefix), message).toBe(true);
    expect(message.slice(prefix.length)).not.toMatch(/^sandlock: /);
  });
});
