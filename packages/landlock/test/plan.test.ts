// The compatibility logic against every ABI, without a kernel.

import { describe, expect, it } from 'vitest';
import type { LandlockSupport } from '../src/detect.js';
import {
  LandlockAbiError,
  LandlockRuleError,
  LandlockUnavailableError,
  landlockRuleset,
  type RulesetBuilder,
  type RulesetOptions,
} from '../src/index.js';
import { planRuleset } from '../src/plan.js';

function kernel(abi: number): LandlockSupport {
  return abi === 0
    ? { available: false, abi: 0, errata: 0, reason: 'ENOSYS (Function not implemented)' }
    : { available: true, abi, errata: 0 };
}

function planOn(abi: number, builder: RulesetBuilder) {
  return planRuleset(builder.request(), kernel(abi));
}

function typical(options?: RulesetOptions): RulesetBuilder {
  return landlockRuleset(options)
    .readExec('/usr')
    .read('/etc')
    .write('/tmp/work')
    .connectTcp([443, { from: 8000, to: 8002 }])
    .bindTcp(8080);
}

describe('planRuleset on a kernel with every feature', () => {
  it('handles everything by default and reports full enforcement', () => {
    const plan = planOn(7, typical());
    expect(plan.status).toBe('full');
    expect(plan.dropped).toEqual([]);
    expect(plan.handledFs).toBe(0xffffn);
    expect(plan.handledNet).toBe(0b11n);
    expect(plan.scoped).toBe(0b11n);
    expect(plan.restrictFlags).toBe(0);
    const ports = [...plan.portAccess.entries()].sort(([a], [b]) => a - b);
    expect(ports).toEqual([
      [443, 2],
      [8000, 2],
      [8001, 2],
      [8002, 2],
      [8080, 1],
    ]);
  });

  it('merges bind and connect on the same port into one rule', () => {
    const plan = planOn(7, landlockRuleset().bindTcp(9000).connectTcp({ from: 8999, to: 9000 }));
    expect(plan.portAccess.get(9000)).toBe(3);
    expect(plan.portAccess.get(8999)).toBe(2);
  });

  it('a kernel newer than the table is used at the table level', () => {
    const plan = planOn(9, typical());
    expect(plan.abi).toBe(7);
    expect(plan.status).toBe('full');
  });

  it('handles only what the caller lists', () => {
    const plan = planOn(
      7,
      landlockRuleset({
        handle: { fs: ['read_file', 'write_file'], net: false, scopes: ['signal'] },
      }).write('/tmp'),
    );
    expect(plan.handledFs).toBe(0b110n);
    expect(plan.handledNet).toBe(0n);
    expect(plan.scoped).toBe(0b10n);
    // An intent keeps only the handled rights: the rest is allowed everywhere anyway.
    expect(plan.pathRules[0]?.allowed).toBe(0b110n);
  });

  it('turns logging options into restrict_self flags', () => {
    const plan = planOn(
      7,
      typical({ logging: { sameExec: false, newExec: true, subdomains: false } }),
    );
    expect(plan.restrictFlags).toBe(0b111);
    expect(planOn(7, typical({ logging: { sameExec: true, newExec: false } })).restrictFlags).toBe(
      0,
    );
  });
});

describe('hard compatibility (the default)', () => {
  it('names the right and the ABI it needs', () => {
    const builder = landlockRuleset({ handle: { scopes: false } }).write('/tmp/x');
    expect(() => planOn(4, builder)).toThrow(LandlockAbiError);
    expect(() => planOn(4, builder)).toThrow(
      "Landlock right 'ioctl_dev' needs ABI 5; this kernel has ABI 4",
    );
  });

  it('lists every missing feature, oldest first', () => {
    let error: unknown;
    try {
      planOn(3, typical());
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(LandlockAbiError);
    const abiError = error as LandlockAbiError;
    expect(abiError.abi).toBe(3);
    expect(abiError.missing.map((m) => `${m.feature}@${m.needsAbi}`)).toEqual([
      'bind_tcp@4',
      'connect_tcp@4',
      'ioctl_dev@5',
      'abstract_unix_socket@6',
      'signal@6',
    ]);
    expect(abiError.message).toBe(
      "Landlock rights 'bind_tcp' (ABI 4), 'connect_tcp' (ABI 4), 'ioctl_dev' (ABI 5), 'abstract_unix_socket' (ABI 6), 'signal' (ABI 6) are newer than this kernel's ABI 3",
    );
  });

  it('counts logging flags as features', () => {
    expect(() => planOn(6, typical({ logging: { newExec: true } }))).toThrow(
      "Landlock right 'log_new_exec_on' needs ABI 7; this kernel has ABI 6",
    );
  });

  it('fails when Landlock is unavailable', () => {
    expect(() => planOn(0, typical())).toThrow(LandlockUnavailableError);
    expect(() => planOn(0, typical())).toThrow(
      'Landlock is not available: ENOSYS (Function not implemented)',
    );
  });
});

describe('best-effort compatibility', () => {
  it('drops what the ABI lacks and says so', () => {
    const plan = planOn(3, typical({ compatibility: 'best-effort' }));
    expect(plan.status).toBe('partial');
    expect(plan.abi).toBe(3);
    expect(plan.dropped).toEqual([
      { feature: 'bind_tcp', category: 'net', needsAbi: 4, rules: ['bind_tcp 8080'] },
      {
        feature: 'connect_tcp',
        category: 'net',
        needsAbi: 4,
        rules: ['connect_tcp 443,8000-8002'],
      },
      { feature: 'ioctl_dev', category: 'fs', needsAbi: 5, rules: ['write /tmp/work'] },
      { feature: 'abstract_unix_socket', category: 'scope', needsAbi: 6, rules: [] },
      { feature: 'signal', category: 'scope', needsAbi: 6, rules: [] },
    ]);
    expect(plan.handledFs).toBe(0x7fffn);
    expect(plan.handledNet).toBe(0n);
    expect(plan.scoped).toBe(0n);
    // TCP is no longer handled, so no port rule may be added (it would be EINVAL).
    expect(plan.portAccess.size).toBe(0);
    expect(plan.pathRules.map((rule) => rule.allowed & ~plan.handledFs)).toEqual([0n, 0n, 0n]);
  });

  it('on ABI 1 drops refer and truncate from write rules', () => {
    const plan = planOn(1, landlockRuleset({ compatibility: 'best-effort' }).write('/w'));
    expect(plan.dropped.map((d) => d.feature)).toEqual([
      'refer',
      'truncate',
      'bind_tcp',
      'connect_tcp',
      'ioctl_dev',
      'abstract_unix_socket',
      'signal',
    ]);
    expect(plan.dropped[0]?.rules).toEqual(['write /w']);
    expect(plan.handledFs).toBe(0x1fffn);
  });

  it('reports none when Landlock is unavailable', () => {
    const plan = planOn(0, typical({ compatibility: 'best-effort' }));
    expect(plan.status).toBe('none');
    expect(plan.abi).toBe(0);
    expect(plan.dropped.map((d) => d.feature)).toContain('read_file');
    expect(plan.handledFs | plan.handledNet | plan.scoped).toBe(0n);
  });

  it('reports none when nothing requested is supported', () => {
    const builder = landlockRuleset({
      compatibility: 'best-effort',
      handle: { fs: false, net: false },
    });
    const plan = planOn(5, builder);
    expect(plan.status).toBe('none');
    expect(plan.dropped.map((d) => d.feature)).toEqual(['abstract_unix_socket', 'signal']);
  });

  it('still fails for a required feature', () => {
    const builder = typical({ compatibility: 'best-effort', require: ['signal'] });
    expect(() => planOn(5, builder)).toThrow(
      "Landlock right 'signal' needs ABI 6; this kernel has ABI 5",
    );
    expect(() => planOn(0, builder)).toThrow(LandlockUnavailableError);
    expect(planOn(6, builder).status).toBe('full');
  });
});

describe('rule validation', () => {
  it('rejects raw rights the ruleset does not handle', () => {
    const builder = landlockRuleset({ handle: { fs: ['read_file'] } }).allowPath('/x', [
      'read_file',
      'truncate',
    ]);
    expect(() => planOn(7, builder)).toThrow(LandlockRuleError);
    expect(() => planOn(7, builder)).toThrow(
      "Landlock rule 'rights [read_file,truncate] /x' allows 'truncate', which the ruleset does not handle",
    );
  });

  it('rejects port rules when TCP is not handled', () => {
    const builder = landlockRuleset({ handle: { net: ['connect_tcp'] } }).bindTcp(80);
    expect(() => planOn(7, builder)).toThrow(
      "Landlock rule 'bind_tcp 80' needs 'bind_tcp' handled",
    );
  });

  it('rejects a ruleset that handles nothing', () => {
    const builder = landlockRuleset({ handle: { fs: false, net: false, scopes: false } });
    expect(() => planOn(7, builder)).toThrow('Landlock ruleset handles nothing');
  });

  it('validates ports', () => {
    const builder = landlockRuleset();
    expect(() => builder.connectTcp(-1)).toThrow(RangeError);
    expect(() => builder.connectTcp(65536)).toThrow('must be an integer in 0..65535, got 65536');
    expect(() => builder.connectTcp(80.5)).toThrow(RangeError);
    expect(() => builder.bindTcp({ from: 10, to: 9 })).toThrow('port range 10-9 is empty');
    expect(() => builder.bindTcp({ from: 0, to: 65535 })).not.toThrow();
    expect(() => builder.bindTcp([1, { from: 2, to: 70000 }])).toThrow(RangeError);
  });

  it('caps the number of distinct ports', () => {
    const capped = (builder: RulesetBuilder) => () => planOn(7, builder);
    expect(capped(landlockRuleset({ maxPortRules: 10 }).connectTcp({ from: 1, to: 11 }))).toThrow(
      'Landlock TCP rules cover 11 ports, more than the limit of 10',
    );
    // Overlapping ranges and bind+connect on one port count once.
    expect(
      capped(
        landlockRuleset({ maxPortRules: 10 })
          .connectTcp([{ from: 1, to: 10 }, 5])
          .bindTcp({ from: 1, to: 10 }),
      ),
    ).not.toThrow();
    // The default cap is every port there is.
    expect(capped(landlockRuleset().connectTcp({ from: 0, to: 65535 }).bindTcp(1))).not.toThrow();
  });

  it('rejects unknown names and bad paths', () => {
    expect(() =>
      planOn(7, landlockRuleset({ handle: { fs: ['read_file', 'bind_tcp' as never] } })),
    ).toThrow("unknown Landlock filesystem right 'bind_tcp'");
    expect(() => landlockRuleset().allowPath('/x', ['fly' as never])).toThrow(
      "unknown Landlock filesystem right 'fly'",
    );
    expect(() => landlockRuleset().allowPath('/x', [])).toThrow('needs at least one right');
    expect(() => landlockRuleset().read('')).toThrow(TypeError);
    expect(() => landlockRuleset().read('/a\0b')).toThrow(TypeError);
    expect(() => landlockRuleset({ abi: -1 })).toThrow(RangeError);
  });
});
