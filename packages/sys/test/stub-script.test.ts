// The launch script encoder: byte layout, data placement and its refusals.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MAX_STEPS,
  decodeStubFailure,
  SCRIPT_BASE,
  SCRIPT_CAPACITY,
  SCRIPT_HEADER_SIZE,
  SCRIPT_MAGIC,
  SCRIPT_STEP_SIZE,
  ScriptEncoder,
  STEP_FATAL_ON_ERROR,
  STEP_FATAL_UNLESS_EQUAL,
  STUB_FAILURE_SIZE,
} from '../src/stub/index.js';
import { REAPER_PARAM, REAPER_PARAMS_SIZE, STEP_FORK_REAPER } from '../src/stub/script.js';

const BASE = BigInt(SCRIPT_BASE);

/** The bytes at absolute address `address` of an encoded script. */
function at(script: Buffer, address: bigint, length: number): Buffer {
  const offset = Number(address - BASE);
  return script.subarray(offset, offset + length);
}

function stepFields(script: Buffer, index: number): bigint[] {
  const start = SCRIPT_HEADER_SIZE + index * SCRIPT_STEP_SIZE;
  return Array.from({ length: 10 }, (_, field) => script.readBigUInt64LE(start + field * 8));
}

describe('ScriptEncoder', () => {
  it('writes the header', () => {
    const encoder = new ScriptEncoder({ maxSteps: 2 });
    encoder.step({ name: 'a', nr: 1 });
    encoder.cstring('xyz');
    const script = encoder.encode(3);
    expect(script.length).toBe(SCRIPT_HEADER_SIZE + 2 * SCRIPT_STEP_SIZE + 4);
    expect(script.readBigUInt64LE(0)).toBe(SCRIPT_MAGIC);
    expect(script.readBigUInt64LE(8)).toBe(BigInt(script.length));
    expect(script.readBigUInt64LE(16)).toBe(1n);
    expect(script.readBigUInt64LE(24)).toBe(3n);
  });

  it('lays out a step as nr, six arguments, flags, store_address, expect', () => {
    const encoder = new ScriptEncoder();
    const slot = encoder.u64Slot();
    encoder.step({ name: 'plain', nr: 59, args: [1, 2n, 3] });
    encoder.step({
      name: 'all',
      nr: 7n,
      args: [1, 2, 3, 4, 5, 6],
      fatal: true,
      expect: 42,
      store: slot,
    });
    encoder.step({ name: 'expect only', nr: 8, expect: 0 });
    const script = encoder.encode(3);
    expect(stepFields(script, 0)).toEqual([59n, 1n, 2n, 3n, 0n, 0n, 0n, 0n, 0n, 0n]);
    const flags = BigInt(STEP_FATAL_ON_ERROR | STEP_FATAL_UNLESS_EQUAL);
    expect(stepFields(script, 1)).toEqual([7n, 1n, 2n, 3n, 4n, 5n, 6n, flags, slot, 42n]);
    expect(stepFields(script, 2)[7]).toBe(BigInt(STEP_FATAL_UNLESS_EQUAL));
    expect(encoder.stepNames()).toEqual(['plain', 'all', 'expect only']);
    expect(encoder.stepCount).toBe(3);
  });

  it('passes negative arguments and expectations in two’s complement', () => {
    const encoder = new ScriptEncoder();
    encoder.step({ name: 'openat', nr: 257, args: [-100, -1n], expect: -1 });
    const fields = stepFields(encoder.encode(3), 0);
    expect(fields[1]).toBe(0xffffffffffffff9cn);
    expect(fields[2]).toBe(0xffffffffffffffffn);
    expect(fields[9]).toBe(0xffffffffffffffffn);
  });

  it('places data after the room for steps, at absolute addresses', () => {
    const encoder = new ScriptEncoder();
    expect(encoder.dataBase).toBe(BASE + BigInt(SCRIPT_HEADER_SIZE + DEFAULT_MAX_STEPS * 80));
    const hello = encoder.cstring('héllo');
    const bytes = encoder.bytes(Uint8Array.of(1, 2, 3));
    const slot = encoder.u64Slot(-2);
    const zeros = encoder.zeros(5);
    const script = encoder.encode(3);
    expect(hello).toBe(encoder.dataBase);
    expect(at(script, hello, 7)).toEqual(Buffer.from('héllo\0'));
    expect(bytes % 8n).toBe(0n);
    expect([...at(script, bytes, 3)]).toEqual([1, 2, 3]);
    expect(at(script, slot, 8).readBigInt64LE(0)).toBe(-2n);
    expect([...at(script, zeros, 5)]).toEqual([0, 0, 0, 0, 0]);
    expect(script.length).toBe(Number(zeros - BASE) + 5);
  });

  it('builds NULL-terminated pointer arrays', () => {
    const encoder = new ScriptEncoder();
    const argv = encoder.cstringArray(['/bin/echo', 'a b', '']);
    const empty = encoder.pointerArray([]);
    const script = encoder.encode(3);
    const pointers = [0, 1, 2, 3].map((index) => at(script, argv, 32).readBigUInt64LE(index * 8));
    expect(pointers[3]).toBe(0n);
    const strings = pointers.slice(0, 3).map((pointer) => {
      const start = Number(pointer - BASE);
      return script.subarray(start, script.indexOf(0, start)).toString();
    });
    expect(strings).toEqual(['/bin/echo', 'a b', '']);
    expect(at(script, empty, 8).readBigUInt64LE(0)).toBe(0n);
  });

  it('keeps every data item 8-byte aligned, apart and intact', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 20 }), (items) => {
        const encoder = new ScriptEncoder({ maxSteps: 1 });
        const addresses = items.map((item) => encoder.bytes(item));
        const script = encoder.encode(0);
        let previousEnd = encoder.dataBase;
        items.forEach((item, index) => {
          const address = addresses[index]!;
          expect(address % 8n).toBe(0n);
          expect(address >= previousEnd).toBe(true);
          expect(at(script, address, item.length).equals(item)).toBe(true);
          previousEnd = address + BigInt(item.length);
        });
      }),
    );
  });

  it('copies data when it is added', () => {
    const encoder = new ScriptEncoder();
    const data = Buffer.from('abc');
    const address = encoder.bytes(data);
    data.write('xyz');
    expect(at(encoder.encode(3), address, 3).toString()).toBe('abc');
  });

  it('refuses more than six arguments', () => {
    const encoder = new ScriptEncoder();
    expect(() => encoder.step({ name: 'seven', nr: 1, args: [1, 2, 3, 4, 5, 6, 7] })).toThrow(
      /"seven" has 7 arguments/,
    );
  });

  it('refuses more steps than it made room for', () => {
    const encoder = new ScriptEncoder({ maxSteps: 1 });
    encoder.step({ name: 'one', nr: 1 });
    expect(() => encoder.step({ name: 'two', nr: 1 })).toThrow(/room for/);
  });

  it('refuses a script larger than the stub buffer', () => {
    const encoder = new ScriptEncoder();
    encoder.zeros(SCRIPT_CAPACITY - Number(encoder.dataBase - BASE));
    expect(encoder.size).toBe(SCRIPT_CAPACITY);
    expect(() => encoder.bytes(Uint8Array.of(1))).toThrow(/more than the stub's/);
    expect(() => new ScriptEncoder({ maxSteps: SCRIPT_CAPACITY / SCRIPT_STEP_SIZE })).toThrow(
      /maxSteps/,
    );
  });

  it('refuses values that do not fit a register', () => {
    const encoder = new ScriptEncoder();
    expect(() => encoder.step({ name: 'big', nr: 1, args: [1n << 64n] })).toThrow(/64 bits/);
    expect(() => encoder.step({ name: 'small', nr: 1, args: [-(1n << 63n) - 1n] })).toThrow(
      /64 bits/,
    );
    expect(() => encoder.step({ name: 'unsafe', nr: 1, args: [2 ** 60] })).toThrow(/safe integer/);
    expect(() => encoder.step({ name: 'fraction', nr: 1, args: [1.5] })).toThrow(/safe integer/);
    expect(encoder.stepCount).toBe(0);
  });

  it('refuses a store address outside its data', () => {
    const encoder = new ScriptEncoder();
    const slot = encoder.u64Slot();
    expect(() => encoder.step({ name: 'header', nr: 1, store: BASE })).toThrow(/outside/);
    expect(() => encoder.step({ name: 'past', nr: 1, store: slot + 1n })).toThrow(/outside/);
    expect(encoder.step({ name: 'ok', nr: 1, store: slot })).toBe(0);
  });

  it('encodes a fork-reaper step: flag 4, the params address in the expect field', () => {
    const encoder = new ScriptEncoder();
    const params = encoder.zeros(REAPER_PARAMS_SIZE);
    encoder.step({ name: 'clone', nr: 56, args: [17], reaper: params });
    encoder.step({ name: 'clone, fatal too', nr: 56, args: [17], reaper: params, fatal: true });
    const script = encoder.encode(3);
    expect(stepFields(script, 0)).toEqual([56n, 17n, 0n, 0n, 0n, 0n, 0n, 4n, 0n, params]);
    expect(stepFields(script, 1)[7]).toBe(BigInt(STEP_FORK_REAPER | STEP_FATAL_ON_ERROR));
  });

  it('refuses a fork-reaper step with expect, or with its params outside the data', () => {
    const encoder = new ScriptEncoder();
    const params = encoder.zeros(REAPER_PARAMS_SIZE);
    expect(() => encoder.step({ name: 'both', nr: 56, reaper: params, expect: 0 })).toThrow(
      /both expect and reaper/,
    );
    expect(() => encoder.step({ name: 'header', nr: 56, reaper: BASE })).toThrow(/outside/);
    expect(() => encoder.step({ name: 'short', nr: 56, reaper: params + 8n })).toThrow(/outside/);
    expect(encoder.stepCount).toBe(0);
  });

  it('lays out ReaperParams as u64 fields: the zeros, the status slot, the broker address', () => {
    expect(REAPER_PARAM).toEqual({
      pollfds: 0,
      killTarget: 8,
      sigmap: 16,
      siginfo: 24,
      closeLast: 32,
      zero: 40,
      status: 56,
      broker: 64,
    });
    expect(REAPER_PARAMS_SIZE).toBe(72);
    expect(STEP_FORK_REAPER).toBe(4);
  });

  it('fills bytes placed before, later fills winning', () => {
    const encoder = new ScriptEncoder({ maxSteps: 0 });
    const first = encoder.zeros(16);
    const second = encoder.bytes(Uint8Array.of(9, 9));
    encoder.fill(first + 4n, Uint8Array.of(1, 2, 3));
    encoder.fill(first + 5n, Uint8Array.of(7));
    encoder.fill(second, Uint8Array.of(5));
    const data = encoder.encode(3).subarray(SCRIPT_HEADER_SIZE);
    expect([...data.subarray(0, 8)]).toEqual([0, 0, 0, 0, 1, 7, 3, 0]);
    expect([...data.subarray(16, 18)]).toEqual([5, 9]);
  });

  it('refuses to fill bytes outside its data', () => {
    const encoder = new ScriptEncoder();
    const slot = encoder.zeros(8);
    expect(() => encoder.fill(slot + 4n, Buffer.alloc(5))).toThrow(/not in this script's data/);
    expect(() => encoder.fill(BASE, Buffer.alloc(1))).toThrow(/not in this script's data/);
  });

  it('refuses a C string with a NUL in it', () => {
    expect(() => new ScriptEncoder().cstring('a\0b')).toThrow(/NUL/);
  });

  it('refuses a negative error fd', () => {
    expect(() => new ScriptEncoder().encode(-1)).toThrow(/error fd/);
  });
});

describe('decodeStubFailure', () => {
  function record(step: bigint, result: bigint): Buffer {
    const buffer = Buffer.alloc(STUB_FAILURE_SIZE);
    buffer.writeBigUInt64LE(step, 0);
    buffer.writeBigInt64LE(result, 8);
    return buffer;
  }

  it('gives the errno of a -errno result', () => {
    expect(decodeStubFailure(record(4n, -9n))).toEqual({ step: 4, result: -9n, errno: 9 });
    expect(decodeStubFailure(record(0n, -4095n)).errno).toBe(4095);
  });

  it('gives no errno for other results', () => {
    expect(decodeStubFailure(record(2n, 3n))).toEqual({ step: 2, result: 3n });
    expect(decodeStubFailure(record(2n, -4096n))).toEqual({ step: 2, result: -4096n });
  });

  it('reads a record inside a larger buffer', () => {
    const buffer = Buffer.concat([Buffer.alloc(5), record(1n, -2n)]);
    expect(decodeStubFailure(buffer.subarray(5))).toEqual({ step: 1, result: -2n, errno: 2 });
  });

  it('refuses a short record', () => {
    expect(() => decodeStubFailure(Buffer.alloc(8))).toThrow(/16 bytes/);
  });
});
