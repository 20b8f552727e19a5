import { getRlimit, setRlimit } from '@sandlock/sys';
import { describe, expect, it } from 'vitest';
import { SANDBOX_OPEN_FILES } from '../src/descriptors.js';
import { systemBuilder } from './helpers.js';

const LIMITS = ['/bin/sh', '-c', 'ulimit -Sn; ulimit -Hn'];

describe('open-file limits', () => {
  it('raise this process to its hard limit and start a sandbox at 1024 (its hard limit unchanged)', async () => {
    const own = getRlimit('NOFILE');
    // As an embedder might have left it: Sandlock raises it before its first launch.
    setRlimit('NOFILE', { soft: 256n, hard: own.hard });
    const result = await systemBuilder().build().run(LIMITS);
    expect(getRlimit('NOFILE')).toEqual({ soft: own.hard, hard: own.hard });
    expect(SANDBOX_OPEN_FILES).toBe(1024n);
    expect(result.stdout.toString()).toBe(`1024\n${own.hard}\n`);
  });

  it('hold the hard limit at 1024 too under a memory limit (descriptors in flight)', async () => {
    const result = await systemBuilder().maxMemory('256M').build().run(LIMITS);
    expect(result.stdout.toString()).toBe('1024\n1024\n');
  });

  it("take the policy's maxOpenFiles as both limits", async () => {
    const result = await systemBuilder().maxOpenFiles(64).build().run(LIMITS);
    expect(result.stdout.toString()).toBe('64\n64\n');
    const more = await systemBuilder().maxOpenFiles(4096).maxMemory('256M').build().run(LIMITS);
    expect(more.stdout.toString()).toBe('4096\n4096\n');
  });
});
