import { describe, expect, it } from 'vitest';
import { formatByteSize, parseByteSize } from '../src/index.js';

describe('parseByteSize', () => {
  it.each([
    ['0', 0],
    ['4096', 4096],
    [' 4096 ', 4096],
    ['12B', 12],
    ['1K', 1024],
    ['1k', 1024],
    ['1KiB', 1024],
    ['1kib', 1024],
    ['1KB', 1024],
    ['512M', 512 * 1024 ** 2],
    ['512 MiB', 512 * 1024 ** 2],
    ['1.5G', 1.5 * 1024 ** 3],
    ['1.5gib', 1.5 * 1024 ** 3],
    ['2T', 2 * 1024 ** 4],
    ['1TiB', 1024 ** 4],
    ['.5K', 512],
    ['1.', 1],
    ['0.3K', 307],
  ])('%j → %d', (input, bytes) => {
    expect(parseByteSize(input)).toBe(bytes);
  });

  it('takes numbers as bytes', () => {
    expect(parseByteSize(1 << 20)).toBe(1 << 20);
    expect(() => parseByteSize(1.5)).toThrow(/invalid byte size 1.5/);
    expect(() => parseByteSize(-1)).toThrow(RangeError);
  });

  it.each([
    ['', /"": empty/],
    ['   ', /" {3}": empty/],
    ['M', /"M": expected a number/],
    ['12X', /"12X": unknown unit "X"/],
    ['12 Mbit', /unknown unit "Mbit"/],
    ['-5M', /"-5M": expected/],
    ['1e3', /"1e3": expected/],
    ['1.5', /"1.5": a fraction of a byte/],
    ['1,5G', /"1,5G": expected/],
    ['10 20', /"10 20": expected/],
    ['99999999P', /unknown unit "P"/],
    ['9999999T', /too large/],
  ])('refuses %j, naming it', (input, message) => {
    expect(() => parseByteSize(input)).toThrow(message);
  });
});

describe('formatByteSize', () => {
  it.each([
    [0, '0 bytes'],
    [1023, '1023 bytes'],
    [1024, '1 KiB'],
    [256 * 1024 ** 2, '256 MiB'],
    [1.5 * 1024 ** 3, '1.5 GiB'],
    [270_000_000, '257.5 MiB'],
  ])('%d → %s', (bytes, text) => {
    expect(formatByteSize(bytes)).toBe(text);
  });
});
