import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const REGISTER = fileURLToPath(new URL('../src/dev/register.mjs', import.meta.url));
const MODULE = new URL('../src/undumpable.ts', import.meta.url).href;

/**
 * A Node process of this user without capabilities (as root, a capable
 * process's files are refused to a capless one whatever its dumpable state)
 * that asks a process of the same user to read its environment before,
 * while and after it holds the supervisor's undumpable state.
 */
function run(env: Record<string, string> = {}): string {
  const script = `
const { holdUndumpable, releaseUndumpable } = await import(${JSON.stringify(MODULE)});
const { spawnSync } = await import('node:child_process');
const shell = \`cat /proc/\${process.pid}/environ >/dev/null 2>&1 && echo read || echo refused\`;
const read = () => spawnSync('/bin/sh', ['-c', shell], { encoding: 'utf8' }).stdout.trim();
const seen = [read()];
holdUndumpable();
holdUndumpable();
seen.push(read());
releaseUndumpable();
seen.push(read());
releaseUndumpable();
seen.push(read());
console.log(seen.join(' '));
`;
  const dir = mkdtempSync(join(tmpdir(), 'sandlock-undumpable-'));
  try {
    const file = join(dir, 'child.mjs');
    writeFileSync(file, script);
    const node = [process.execPath, '--import', REGISTER, file];
    const argv =
      process.getuid?.() === 0
        ? ['setpriv', '--inh-caps=-all', '--bounding-set=-all', ...node]
        : node;
    const result = spawnSync(argv[0]!, argv.slice(1), {
      encoding: 'utf8',
      env: { ...process.env, ...env },
    });
    if (result.status !== 0) throw new Error(result.stderr);
    return result.stdout.trim();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('the supervising process while it supervises', () => {
  it('is not dumpable, so no process of its user reads its environment; then it is again', () => {
    // Before, with two sandboxes, with one left, after.
    expect(run()).toBe('read refused refused read');
  });

  it('stays dumpable with SANDLOCK_HOST_DUMPABLE=1', () => {
    expect(run({ SANDLOCK_HOST_DUMPABLE: '1' })).toBe('read read read read');
  });
});
