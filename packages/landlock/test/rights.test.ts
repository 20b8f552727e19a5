import { describe, expect, it } from 'vitest';
import {
  ALL_FS_RIGHTS,
  FEATURES,
  type Feature,
  FILE_RIGHTS,
  INTENT_RIGHTS,
  KNOWN_ABI,
} from '../src/index.js';

function introducedIn(abi: number): Feature[] {
  return (Object.keys(FEATURES) as Feature[]).filter((name) => FEATURES[name].abi === abi);
}

describe('the feature table', () => {
  it('says what each ABI version added', () => {
    expect(introducedIn(1)).toEqual([
      'execute',
      'write_file',
      'read_file',
      'read_dir',
      'remove_dir',
      'remove_file',
      'make_char',
      'make_dir',
      'make_reg',
      'make_sock',
      'make_fifo',
      'make_block',
      'make_sym',
    ]);
    expect(introducedIn(2)).toEqual(['refer']);
    expect(introducedIn(3)).toEqual(['truncate']);
    expect(introducedIn(4)).toEqual(['bind_tcp', 'connect_tcp']);
    expect(introducedIn(5)).toEqual(['ioctl_dev']);
    expect(introducedIn(6)).toEqual(['abstract_unix_socket', 'signal']);
    expect(introducedIn(7)).toEqual(['log_same_exec_off', 'log_new_exec_on', 'log_subdomains_off']);
    expect(KNOWN_ABI).toBe(7);
  });

  it('uses the UAPI bit values', () => {
    // Filesystem rights are bits 0..15 in declaration order (include/uapi/linux/landlock.h).
    ALL_FS_RIGHTS.forEach((right, index) => {
      expect(FEATURES[right].bit).toBe(1n << BigInt(index));
    });
    expect(FEATURES.bind_tcp.bit).toBe(1n);
    expect(FEATURES.connect_tcp.bit).toBe(2n);
    expect(FEATURES.abstract_unix_socket.bit).toBe(1n);
    expect(FEATURES.signal.bit).toBe(2n);
    expect(FEATURES.log_same_exec_off.bit).toBe(1n);
    expect(FEATURES.log_new_exec_on.bit).toBe(2n);
    expect(FEATURES.log_subdomains_off.bit).toBe(4n);
  });

  it('knows which rights a file can carry (ACCESS_FILE in security/landlock/fs.c)', () => {
    expect([...FILE_RIGHTS].sort()).toEqual(
      ['execute', 'ioctl_dev', 'read_file', 'truncate', 'write_file'].sort(),
    );
  });
});

describe('intents', () => {
  it('read lists and reads, readExec also executes', () => {
    expect(INTENT_RIGHTS.read).toEqual(['read_file', 'read_dir']);
    expect(INTENT_RIGHTS.readExec).toEqual(['read_file', 'read_dir', 'execute']);
  });

  it('write is read plus changes, without execute and device node creation', () => {
    const write = new Set(INTENT_RIGHTS.write);
    for (const right of INTENT_RIGHTS.read) expect(write.has(right)).toBe(true);
    for (const right of ['execute', 'make_char', 'make_block'] as const) {
      expect(write.has(right)).toBe(false);
    }
    const rest = ALL_FS_RIGHTS.filter((r) => !['execute', 'make_char', 'make_block'].includes(r));
    expect([...write].sort()).toEqual([...rest].sort());
  });
});
