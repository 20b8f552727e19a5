import { closeSync, readdirSync, readSync, writeSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  close,
  F_GET_SEALS,
  fcntl,
  readOnlyFile,
  readOnlyReopen,
  sealedMemfd,
} from '../src/index.js';

describe('sealedMemfd and readOnlyReopen', () => {
  it('hold the contents, refuse every change, and reopen read-only with their own offset', () => {
    const memfd = sealedMemfd('made up\n');
    try {
      expect(fcntl(memfd, F_GET_SEALS)).toBe(0xf); // SEAL, SHRINK, GROW, WRITE
      expect(() => writeSync(memfd, 'x')).toThrow(/EPERM/);
      const first = readOnlyReopen(memfd);
      const second = readOnlyReopen(memfd);
      try {
        const buffer = Buffer.alloc(64);
        expect(buffer.toString('utf8', 0, readSync(first, buffer))).toBe('made up\n');
        // Its own offset: the first read did not move the second's.
        expect(buffer.toString('utf8', 0, readSync(second, buffer))).toBe('made up\n');
        expect(() => writeSync(first, 'x')).toThrow(/EBADF/);
      } finally {
        closeSync(first);
        closeSync(second);
      }
    } finally {
      close(memfd);
    }
  });
});

describe('readOnlyFile', () => {
  it('is a read-only descriptor of sealed contents, with no other descriptor left open', () => {
    const before = readdirSync('/proc/self/fd').length;
    const fd = readOnlyFile('made up\n');
    try {
      expect(readdirSync('/proc/self/fd').length).toBe(before + 1);
      const buffer = Buffer.alloc(64);
      expect(buffer.toString('utf8', 0, readSync(fd, buffer))).toBe('made up\n');
      expect(() => writeSync(fd, 'x')).toThrow(/EBADF/);
    } finally {
      closeSync(fd);
    }
  });
});
