import { describe, expect, it } from 'vitest';
import { sandlock } from './helpers.js';

describe('--system and the device nodes', () => {
  it('--system runs programs and reads what they need of /etc, not its secrets', () => {
    const result = sandlock([
      'run',
      '--system',
      '--',
      'sh',
      '-c',
      'id -un; head -1 /etc/os-release; getent hosts localhost >/dev/null && echo resolved; for f in /etc/shadow /etc/gshadow /etc/machine-id; do cat $f >/dev/null 2>&1 && echo "read $f"; done; ls /etc >/dev/null 2>&1 || echo "no listing"',
    ]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^\w+\nPRETTY_NAME=.*\nresolved\nno listing\n$/);
  });

  it('the harmless device nodes by default; --no-devices takes them away', () => {
    const probe =
      'echo x >/dev/null && head -c 3 /dev/zero | wc -c && head -c 3 /dev/urandom | wc -c';
    const granted = sandlock(['run', '--system', '--', 'sh', '-c', probe]);
    expect(granted).toMatchObject({ status: 0, stdout: '3\n3\n' });
    const refused = sandlock(['run', '--system', '--no-devices', '--', 'sh', '-c', probe]);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/\/dev\/null: Permission denied/);
    // The node only: nothing can be made beside it.
    const beside = sandlock(['run', '--system', '--', 'sh', '-c', ': > /dev/sandlock-made']);
    expect(beside.status).not.toBe(0);
  });
});
