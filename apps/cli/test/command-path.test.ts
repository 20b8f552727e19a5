import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sandlock } from './helpers.js';

const home = mkdtempSync(join(tmpdir(), 'sandlock-shims-'));
const shims = join(home, 'shims');
mkdirSync(shims);
for (const name of ['true', 'only-here']) {
  writeFileSync(join(shims, name), '#!/bin/sh\necho shim\n');
  chmodSync(join(shims, name), 0o755);
}
afterAll(() => rmSync(home, { recursive: true, force: true }));

describe('the command is found as the sandbox would find it', () => {
  const withShims = ['--env', `PATH=${shims}:/usr/bin:/bin`];

  it('skips a PATH entry the sandbox may not execute from', () => {
    const result = sandlock(['run', '--system', ...withShims, '--', 'true']);
    expect(result).toMatchObject({ status: 0, stdout: '', stderr: '' });
  });

  it('a command found only outside the grants: exit 126, naming it and the grant that allows it', () => {
    const result = sandlock(['run', '--system', ...withShims, '--', 'only-here']);
    expect(result.status).toBe(126);
    expect(result.stderr).toBe(
      `sandlock: only-here: ${join(shims, 'only-here')} is outside what the sandbox may execute; grant its directory with -r ${shims} (fsRead('${shims}'))\n`,
    );
    const granted = sandlock(['run', '--system', '-r', shims, ...withShims, '--', 'only-here']);
    expect(granted).toMatchObject({ status: 0, stdout: 'shim\n' });
    const denied = sandlock([
      'run',
      '--system',
      '-r',
      home,
      '--fs-deny',
      shims,
      ...withShims,
      '--',
      'only-here',
    ]);
    expect(denied.status).toBe(126);
  });
});
