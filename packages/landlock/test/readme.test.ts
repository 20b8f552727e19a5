// The README's example, with a temp dir for /tmp/job.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { close, launch } from '@sandlock/sys';
import { expect, it } from 'vitest';
import { detectLandlock, landlockRuleset, restrictSelfSteps } from '../src/index.js';
import { SYSTEM_DIRS } from './helpers.js';

const support = detectLandlock();
if (!support.available) console.warn(`skipping the README example: ${support.reason}`);

it.skipIf(!support.available)('the README example works', async () => {
  const job = mkdtempSync(join(tmpdir(), 'sandlock-readme-'));
  writeFileSync(join(job, 'input.txt'), '');
  try {
    const ruleset = landlockRuleset({ compatibility: 'best-effort' })
      .readExec(SYSTEM_DIRS)
      .write(job)
      .connectTcp(443)
      .create();
    const steps = [{ kind: 'noNewPrivs' } as const, ...restrictSelfSteps(ruleset)];
    const child = launch({
      path: '/bin/sh',
      argv: ['sh', '-c', `ls ${job}; ls /root`],
      env: {},
      steps,
    });
    let stdout = '';
    let stderr = '';
    child.child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk;
    });
    child.child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk;
    });
    const exited = new Promise((resolve) => child.child.on('close', resolve));
    await child.release();
    if (ruleset.fd !== null) close(ruleset.fd);
    await exited;
    expect(stdout).toBe('input.txt\n');
    expect(stderr).toContain('Permission denied');
  } finally {
    rmSync(job, { recursive: true, force: true });
  }
});
