import { parseNetRule } from '@sandlock/policy';
import { describe, expect, it } from 'vitest';
import { HttpRules, isSpecialAddress, Names } from '../src/index.js';
import { lookupOf, netView } from './helpers.js';

const none = new HttpRules({ httpAllow: [], httpDeny: [], httpAuth: [] });

describe('names', () => {
  it('under netAllow: name and wildcard rules by name, address rules by address', () => {
    const names = new Names({
      net: netView(['*.npmjs.test:443', 'github.test:443', '10.0.0.0/8:5432'], {
        'github.test': ['140.82.1.1'],
      }),
      http: none,
      lookup: lookupOf({}),
    });
    expect(names.netRefuses('registry.npmjs.test', '104.16.1.1', 443)).toBeNull();
    expect(names.netRefuses('npmjs.test', '104.16.1.1', 443)).toBe(
      'npmjs.test (104.16.1.1:443) is allowed by no --net-allow rule',
    );
    expect(names.netRefuses('registry.npmjs.test', '104.16.1.1', 80)).not.toBeNull();
    // A pinned name's addresses are allowed as addresses (the network module's own rule).
    expect(names.netRefuses('other.test', '140.82.1.1', 443)).toBeNull();
    expect(names.netRefuses('db.test', '10.1.2.3', 5432)).toBeNull();
    expect(names.netRefuses('db.test', '::ffff:10.1.2.3', 5432)).toBeNull();
    expect(names.mayResolve('a.b.npmjs.test')).toBe(true);
    expect(names.mayResolve('db.test')).toBe(false);
  });

  it('under netDeny: every name but the denied ones', () => {
    const names = new Names({
      net: { mode: 'deny', rules: [parseNetRule('*.internal.test') as never], hosts: {} },
      http: none,
      lookup: lookupOf({}),
    });
    expect(names.netRefuses('db.internal.test', '10.1.2.3', 5432)).toBe(
      'db.internal.test (10.1.2.3:5432) is denied by --net-deny',
    );
    expect(names.netRefuses('example.test', '93.184.216.34', 443)).toBeNull();
    expect(names.mayResolve('db.internal.test')).toBe(false);
    expect(names.mayResolve('example.test')).toBe(true);
  });

  it('a name has only the addresses it resolved to, special ones only when a rule names them', async () => {
    const names = new Names({
      net: netView(['*.wild.test:443', 'local.test:443'], { 'local.test': ['127.0.0.1'] }),
      http: none,
      lookup: lookupOf({
        'a.wild.test': ['127.0.0.1', '93.184.216.34'],
        'm.wild.test': ['::ffff:169.254.169.254'],
      }),
    });
    expect(await names.addresses('a.wild.test')).toEqual(['93.184.216.34']);
    expect(await names.addresses('m.wild.test')).toEqual([]);
    expect(await names.addresses('local.test')).toEqual(['127.0.0.1']);
    expect(await names.hasAddress('a.wild.test', '93.184.216.34')).toBe(true);
    expect(await names.hasAddress('a.wild.test', '127.0.0.1')).toBe(false);
    expect(await names.hasAddress('nowhere.wild.test', '93.184.216.34')).toBe(false);
    expect(await names.hasAddress('93.184.216.34', '::ffff:93.184.216.34')).toBe(true);
    for (const address of [
      '127.0.0.53',
      '169.254.169.254',
      '10.0.0.1',
      '192.168.1.1',
      'fd00:ec2::254',
      '::1',
      '0.0.0.0',
    ]) {
      expect(isSpecialAddress(address), address).toBe(true);
    }
    expect(isSpecialAddress('93.184.216.34')).toBe(false);
  });

  it('looks up no name the sandbox may not resolve: an SNI or Host would carry data out', async () => {
    const asked: string[] = [];
    const names = new Names({
      net: netView(['93.184.216.0/24:443'], {}),
      http: none,
      lookup: async (name) => {
        asked.push(name);
        return ['93.184.216.34'];
      },
    });
    expect(await names.hasAddress('c2VjcmV0.exfil.test', '93.184.216.34')).toBe(false);
    expect(asked).toEqual([]);
  });
});
