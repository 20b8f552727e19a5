import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CLI, FORK_SIX, SYSTEM, sandlock } from './helpers.js';

// The inner sandlock must be able to read Node, itself and its koffi.
const repository = fileURLToPath(new URL('../../..', import.meta.url));
const NODE_DIR = process.execPath.startsWith('/usr/') ? [] : ['-r', process.execPath];
const INNER = [...SYSTEM, ...NODE_DIR, '-r', repository];

/** `sandlock run OUTER… -- sandlock run INNER…`, both with what Node needs to read. */
function nested(outer: readonly string[], inner: readonly string[]) {
  return sandlock([
    'run',
    ...INNER,
    '-w',
    '/dev/null',
    ...outer,
    '--',
    process.execPath,
    CLI,
    'run',
    ...INNER,
    ...inner,
  ]);
}

describe('a sandbox inside a sandbox', () => {
  it('keeps its own supervisor and enforces its own limit', () => {
    expect(existsSync(CLI)).toBe(true);
    const result = nested(['-r', '/proc'], ['-P', '3', '--', '/usr/bin/python3', '-c', FORK_SIX]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('2 4\n');
    expect(result.status).toBe(0);
  });

  it('refuses a limit it cannot see, instead of enforcing nothing', () => {
    const result = nested([], ['-P', '3', '--', 'true']);
    expect(result.status).toBe(125);
    expect(result.stderr).toBe(
      'sandlock: maxProcesses needs /proc, which this process cannot read (EACCES); inside another sandbox, grant it /proc\n',
    );
  });

  it('says why a supervised sandbox cannot nest another supervisor', () => {
    const result = nested(['-r', '/proc', '-P', '50'], ['-P', '3', '--', 'true']);
    expect(result.status).toBe(125);
    expect(result.stderr).toMatch(
      /^sandlock: seccomp failed: EBUSY .*already runs under a supervised sandbox/,
    );
  });
});
