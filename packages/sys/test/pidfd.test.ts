import { spawn } from 'node:child_process';
import { writeSync } from 'node:fs';
import { constants } from 'node:os';
import { describe, expect, it } from 'vitest';
import {
  close,
  closeRange,
  F_ADD_SEALS,
  F_SEAL_WRITE,
  fcntl,
  MFD_ALLOW_SEALING,
  MFD_CLOEXEC,
  memfdCreate,
  pidfdGetfd,
  pidfdOpen,
  pidfdSendSignal,
} from '../src/index.js';

describe('pidfd, memfd and close_range bindings', () => {
  it('signals a process through a pidfd', async () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.on('exit', (_code, signal) => resolve(signal)),
    );
    const pidfd = pidfdOpen(child.pid!);
    try {
      pidfdSendSignal(pidfd, constants.signals.SIGTERM);
    } finally {
      close(pidfd);
    }
    expect(await exited).toBe('SIGTERM');
  });

  it('duplicates a descriptor of another process', async () => {
    const child = spawn('sleep', ['30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const received = new Promise<string>((resolve) =>
      child.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString())),
    );
    const pidfd = pidfdOpen(child.pid!);
    try {
      const stdoutOfChild = pidfdGetfd(pidfd, 1);
      writeSync(stdoutOfChild, 'written through the child fd');
      close(stdoutOfChild);
      expect(await received).toBe('written through the child fd');
      expect(() => pidfdGetfd(pidfd, 999)).toThrow(
        expect.objectContaining({ syscall: 'pidfd_getfd', code: 'EBADF' }),
      );
    } finally {
      close(pidfd);
      child.kill('SIGKILL');
    }
  });

  it('creates sealable memfds and closes ranges', () => {
    const fd = memfdCreate('sandlock-test', MFD_CLOEXEC | MFD_ALLOW_SEALING);
    writeSync(fd, 'sealed');
    fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE);
    expect(() => writeSync(fd, 'more')).toThrow(expect.objectContaining({ code: 'EPERM' }));
    closeRange(fd, fd);
    expect(() => fcntl(fd, 1 /* F_GETFD */)).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });

  it('reports a pid that does not exist', () => {
    expect(() => pidfdOpen(0x7ffffff0)).toThrow('pidfd_open pid 2147483632 failed: ESRCH');
  });
});
