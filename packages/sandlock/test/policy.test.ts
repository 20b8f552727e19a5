import { describe, expect, it } from 'vitest';
import { PolicyError, parsePolicy, Sandbox } from '../src/index.js';

describe('policy building', () => {
  it('reports every problem at once, naming each field', () => {
    const build = () =>
      Sandbox.builder()
        .fsRead('relative/path', '/nonexistent/sandlock-test')
        .netBind(70000, { from: 9000, to: 8000 })
        .env('BAD=NAME', 'x')
        .maxOpenFiles(0)
        .cpuCores(100000)
        .build();
    expect(build).toThrow(PolicyError);
    try {
      build();
    } catch (error) {
      const problems = (error as PolicyError).problems;
      expect(problems.map((p) => p.field)).toEqual([
        'fsRead[0]',
        'fsRead[1]',
        'env',
        'cpuCores[0]',
        'maxOpenFiles',
        'netBind[0]',
        'netBind[1]',
      ]);
      expect(problems[0]!.message).toBe('expected an absolute path, got "relative/path"');
      expect(problems[1]!.message).toBe('/nonexistent/sandlock-test does not exist');
      expect(problems[5]!.message).toBe('expected a TCP port from 0 to 65535, got number 70000');
      expect(problems[6]!.message).toBe('range start 9000 is above its end 8000');
      expect((error as Error).message).toMatch(
        /^invalid policy \(7 problems\):\n {2}fsRead\[0\]: /,
      );
    }
  });

  it('is immutable and round-trips through JSON', () => {
    const sandbox = Sandbox.builder()
      .fsRead('/usr')
      .fsWrite('/tmp')
      .fsDeny('/usr/share/doc')
      .env({ A: '1' })
      .env('B', '2')
      .netConnect(443, { from: 8000, to: 8010 })
      .cpuCores(0)
      .noCoredump()
      .build();
    const policy = sandbox.policy;
    expect(Object.isFrozen(policy)).toBe(true);
    expect(Object.isFrozen(policy.fsRead)).toBe(true);
    expect(() => (policy.fsRead as string[]).push('/etc')).toThrow(TypeError);
    const again = Sandbox.fromPolicy(JSON.parse(JSON.stringify(policy))).policy;
    expect(again).toEqual(policy);
    expect(policy.env).toEqual({ A: '1', B: '2' });
    expect(policy.noRawSockets).toBe(true);
  });

  it('rejects unknown fields and wrong types from JSON', () => {
    expect(() => parsePolicy({ fsRead: '/usr', fsReed: [] })).toThrow(
      'invalid policy (2 problems):\n  fsReed: unknown field\n  fsRead: expected a list, got "/usr"',
    );
    expect(() => parsePolicy([])).toThrow('policy: expected an object, got an array');
  });

  it('takes a random seed as a u64 and a start time as an instant', () => {
    const policy = Sandbox.builder()
      .randomSeed(2n ** 64n - 1n)
      .timeStart('2000-01-01T01:00:00+01:00')
      .build().policy;
    expect(policy.randomSeed).toBe('18446744073709551615');
    expect(policy.timeStart).toBe(Date.UTC(2000, 0, 1));
    expect(Sandbox.fromPolicy(JSON.parse(JSON.stringify(policy))).policy).toEqual(policy);
    expect(Sandbox.builder().randomSeed(42).timeStart(new Date(0)).build().policy).toMatchObject({
      randomSeed: '42',
      timeStart: 0,
    });
    expect(parsePolicy({ timeStart: '2000-01-01' }).timeStart).toBe(Date.UTC(2000, 0, 1));
  });

  it('refuses seeds outside u64 and instants without a time zone', () => {
    const problems = (input: object) => {
      try {
        parsePolicy(input);
      } catch (error) {
        return (error as PolicyError).problems.map((p) => `${p.field}: ${p.message}`);
      }
      return [];
    };
    expect(problems({ randomSeed: -1 })[0]).toMatch(
      /^randomSeed: expected an integer from 0 to 18446744073709551615/,
    );
    expect(problems({ randomSeed: '18446744073709551616' })).toHaveLength(1);
    expect(problems({ randomSeed: 1.5 })).toHaveLength(1);
    expect(problems({ timeStart: '2000-01-01T00:00:00' })[0]).toMatch(
      /^timeStart: expected an ISO 8601 date-time with a time zone/,
    );
    expect(problems({ timeStart: new Date(Number.NaN) })[0]).toMatch(/got an invalid Date$/);
    expect(problems({ timeStart: -1 })).toHaveLength(1);
  });
});
