import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { alive, eventually, SYSTEM_READ } from './helpers.js';

const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'sandlock-parent-death-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('when the Node process dies', () => {
  it('the whole sandbox dies with it, setsid processes included', async () => {
    const pids = join(work, 'pids');
    const script = join(work, 'parent.mjs');
    // The parent runs the built package: the test runs after `pnpm build`.
    writeFileSync(
      script,
      `import { Sandbox } from ${JSON.stringify(dist)};
const sandbox = Sandbox.builder().fsRead(...${JSON.stringify(SYSTEM_READ)}).fsWrite(${JSON.stringify(work)}, '/dev/null').build();
await sandbox.spawn(['/bin/sh', '-c', 'setsid sh -c "echo \\$\\$ >> ${pids}; exec sleep 60" & echo $$ >> ${pids}; exec sleep 60'], { stdio: ['ignore', 'ignore', 'inherit'] });
process.stdout.write('started\\n');
setInterval(() => {}, 1000);
`,
    );
    const parent = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => parent.stdout.once('data', () => resolve()));
    expect(
      await eventually(() => {
        try {
          return readFileSync(pids, 'utf8').trim().split('\n').length === 2;
        } catch {
          return false;
        }
      }),
    ).toBe(true);
    const sandboxed = readFileSync(pids, 'utf8').trim().split('\n').map(Number);
    expect(sandboxed.every(alive)).toBe(true);
    parent.kill('SIGKILL');
    expect(await eventually(() => sandboxed.every((pid) => !alive(pid)), 30_000)).toBe(true);
  });
});
