import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { SYSTEM } from './helpers.js';

const appDir = fileURLToPath(new URL('..', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'sandlock-pack-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('the packed CLI', () => {
  it('installs from its tarball and runs a sandboxed command', () => {
    execFileSync('pnpm', ['pack', '--pack-destination', scratch], { cwd: appDir, stdio: 'pipe' });
    const tarball = readdirSync(scratch).find((name) => name.endsWith('.tgz'));
    expect(tarball).toBeDefined();
    const project = join(scratch, 'project');
    execFileSync('npm', ['init', '-y'], { cwd: scratch, stdio: 'pipe' });
    execFileSync('mkdir', ['-p', project]);
    execFileSync('npm', ['init', '-y'], { cwd: project, stdio: 'pipe' });
    execFileSync('npm', ['install', '--no-audit', '--no-fund', join(scratch, tarball!)], {
      cwd: project,
      stdio: 'pipe',
    });
    const bin = join(project, 'node_modules', '.bin', 'sandlock');
    expect(existsSync(bin)).toBe(true);
    const result = spawnSync(bin, ['run', ...SYSTEM, '--', 'echo', 'from the tarball'], {
      encoding: 'utf8',
    });
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('from the tarball\n');
    expect(result.status).toBe(0);
  }, 180_000);
});
