import { availableParallelism, tmpdir } from 'node:os';
import { getRlimit } from '@sandlock/sys';
import { describe, expect, it } from 'vitest';
import {
  applyFlag,
  PolicyDraft,
  PolicyError,
  policyFlags,
  profileDraft,
  whereOf,
} from '../src/index.js';

function problemsOf(draft: PolicyDraft): string[] {
  try {
    draft.resolve();
  } catch (error) {
    expect(error).toBeInstanceOf(PolicyError);
    return (error as PolicyError).problems.map((p) => `${whereOf(p)}: ${p.message}`);
  }
  return [];
}

function flags(...argv: [string, string?][]): PolicyDraft {
  const draft = new PolicyDraft();
  for (const [name, value] of argv) {
    const flag = policyFlags().find((f) => f.long === name)!;
    applyFlag(draft, flag, value);
  }
  return draft;
}

describe('problems name what the user wrote', () => {
  it('a flag: its short and long names and the text as typed', () => {
    expect(problemsOf(flags(['max-memory', '1']))).toEqual([
      "-m/--max-memory: expected a size like 64M or 2G, got '1'",
    ]);
    expect(
      problemsOf(
        flags(
          ['fs-read', 'relative'],
          ['net-bind', '9000-8000'],
          ['cpu-cores', '0,x'],
          ['env', 'NOVALUE'],
        ),
      ),
    ).toEqual([
      "-r/--fs-read: expected an absolute path, got 'relative'",
      "--env: expected KEY=VALUE, got 'NOVALUE'",
      '--cpu-cores: expected a CPU number from 0 to ' + `${availableParallelism() - 1}, got 'x'`,
      '--net-bind: range start 9000 is above its end 8000',
    ]);
    expect(problemsOf(flags(['random-seed', '-1'], ['time-start', '2000-01-01T00:00']))).toEqual([
      "--random-seed: expected a whole number from 0 to 2^64-1, got '-1'",
      "--time-start: expected an ISO 8601 date-time with a time zone (2000-01-01T00:00:00Z), from 1970 to 9999, got '2000-01-01T00:00'",
    ]);
  });

  it('a profile: file, line and column of the value, and its section.key', () => {
    const text = [
      '[filesystem]',
      'read = ["/usr", "relative"]',
      '[limits]',
      'memory = 0',
      'processes = "many"',
    ].join('\n');
    expect(problemsOf(profileDraft(text, 'job.toml'))).toEqual([
      'job.toml:2:17: filesystem.read: expected an absolute path, got "relative"',
      'job.toml:4:10: limits.memory: expected at least 1 byte, got 0',
      'job.toml:5:13: limits.processes: expected a number of processes from 1 to 4194304, got "many"',
    ]);
  });

  it('unknown sections and keys, with a suggestion and the position of the key', () => {
    const text = [
      'memory = "1G"',
      '[limits]',
      '  memroy = "1G"',
      '[filesytem]',
      'read = []',
      '[network]',
      'connect = [443]',
      'alow = ["example.com"]',
    ].join('\n');
    expect(problemsOf(profileDraft(text, 'p.toml'))).toEqual([
      "p.toml:1:1: memory: a key outside any section; did you mean 'memory' under [limits]?",
      "p.toml:3:3: limits.memroy: unknown key; did you mean 'memory'? (in [limits]: cpu_cores, open_files, memory, processes, cpu)",
      'p.toml:4:1: filesytem: unknown section; did you mean [filesystem]? (sections: [filesystem] [workdir] [environment] [program] [limits] [network] [sandbox] [determinism] [http])',
      "p.toml:8:1: network.alow: unknown key; did you mean 'allow'? (in [network]: bind, connect, no_raw_sockets, allow, deny, unix, allow_bind, deny_bind, port_remap)",
    ]);
  });

  it('wrong types, a local time and TOML that does not parse', () => {
    const text = [
      '[program]',
      'no_coredump = "yes"',
      '[determinism]',
      'time_start = 2000-01-01T00:00:00',
      'num_cpus = 1.5',
    ].join('\n');
    expect(problemsOf(profileDraft(text, 'p.toml'))).toEqual([
      'p.toml:2:15: program.no_coredump: expected true or false, got "yes"',
      'p.toml:5:12: determinism.num_cpus: expected a number of CPUs from 1 to 4096, got 1.5',
      'p.toml:4:14: determinism.time_start: expected an ISO 8601 date-time with a time zone (2000-01-01T00:00:00Z), a Date or epoch milliseconds, from 1970 to 9999, got "2000-01-01T00:00:00"',
    ]);
    expect(problemsOf(profileDraft('[limits]\nmemory = \n', 'bad.toml'))).toEqual([
      expect.stringMatching(/^bad\.toml:\d+:\d+: not valid TOML: /),
    ]);
    expect(problemsOf(profileDraft('[limits]\ncpu = 1\ncpu = 2\n', 'dup.toml'))).toEqual([
      expect.stringMatching(/^dup\.toml:3:1: not valid TOML: /),
    ]);
  });

  it('a profile then flags: flags replace single values and extend lists', () => {
    const draft = profileDraft(
      '[filesystem]\nread = ["/usr"]\n[limits]\nmemory = "1G"\n[environment]\nvars = { A = "1" }',
      'p.toml',
    );
    const flag = (name: string, value: string) =>
      applyFlag(draft, policyFlags().find((f) => f.long === name)!, value);
    flag('fs-read', '/etc');
    flag('max-memory', '64M');
    flag('env', 'B=2');
    const policy = draft.resolve();
    expect(policy.fsRead).toEqual(['/usr', '/etc']);
    expect(policy.maxMemory).toBe(64 << 20);
    expect(policy.env).toEqual({ A: '1', B: '2' });
  });

  it('a single value given twice: the last wins, and every one is checked', () => {
    expect(problemsOf(flags(['cwd', '/nonexistent-sandlock'], ['cwd', '/tmp']))).toEqual([
      '--cwd: /nonexistent-sandlock does not exist',
    ]);
    expect(flags(['cwd', '/usr'], ['cwd', '/tmp']).resolve().cwd).toBe('/tmp');
  });

  it('refuses odd input: calendar dates, names with control characters, CPUs the machine lacks', () => {
    expect(problemsOf(flags(['time-start', '2000-02-30T00:00:00Z']))).toEqual([
      "--time-start: expected an ISO 8601 date-time with a time zone (2000-01-01T00:00:00Z), from 1970 to 9999, got '2000-02-30T00:00:00Z'",
    ]);
    expect(problemsOf(flags(['time-start', '2000-02-29T00:00:00Z']))).toEqual([]);
    expect(problemsOf(flags(['env', 'A\nB=x'], ['hostname', 'a b'], ['hostname', 'a/b']))).toEqual([
      '--env: variable name "A\\nB" must be non-empty, without \'=\' or control characters',
      "--hostname: expected a host name of 1 to 64 letters, digits, '-', '_' and '.' (not starting with '-' or '.'), got 'a b'",
      "--hostname: expected a host name of 1 to 64 letters, digits, '-', '_' and '.' (not starting with '-' or '.'), got 'a/b'",
    ]);
    const last = availableParallelism() - 1;
    for (const text of ['18446744073709551616', '0-9999999999', '0-130000', '3-1']) {
      expect(problemsOf(flags(['cpu-cores', text]))).toEqual([
        `--cpu-cores: expected a CPU number from 0 to ${last}, got '${text}'`,
      ]);
    }
    expect(flags(['cpu-cores', `0-${last}`]).resolve().cpuCores).toHaveLength(last + 1);
  });

  it('a plugin that is not there, and open-file limits no sandbox can start with', () => {
    expect(problemsOf(flags(['plugin', '/nonexistent/sandlock-plugin.js']))).toEqual([
      '--plugin: /nonexistent/sandlock-plugin.js does not exist',
    ]);
    // The problem quotes what was typed, not the object made of it.
    expect(problemsOf(flags(['plugin', 'relative.mjs']))).toEqual([
      "--plugin: expected { module: a file: URL or an absolute path, options? }, got 'relative.mjs'",
    ]);
    const hard = Number(getRlimit('NOFILE').hard);
    const why =
      "the sandbox's first process needs a few of its own; no sandbox can raise this process's hard limit";
    for (const text of ['8', String(hard + 1)]) {
      expect(problemsOf(flags(['max-open-files', text]))).toEqual([
        `--max-open-files: expected a number of open files from 16 to ${hard}, got '${text}' (${why})`,
      ]);
    }
  });

  it("what only a workdir's layer uses is refused without a workdir, not ignored", () => {
    expect(
      problemsOf(
        flags(
          ['on-exit', 'keep'],
          ['on-error', 'commit'],
          ['max-disk', '10M'],
          ['fs-storage', '/var/tmp/layers'],
        ),
      ),
    ).toEqual([
      "--on-exit: needs workdir (it applies to the workdir's layer)",
      "--on-error: needs workdir (it applies to the workdir's layer)",
      "--max-disk: needs workdir (it applies to the workdir's layer)",
      "--fs-storage: needs workdir (it applies to the workdir's layer)",
    ]);
    expect(problemsOf(flags(['max-disk', '10M'], ['workdir', tmpdir()]))).toEqual([]);
  });

  it('with a chroot, the cwd is a path inside the root, found there when the sandbox starts', () => {
    const inside = '/nonexistent-sandlock-on-the-host';
    expect(flags(['chroot', tmpdir()], ['cwd', inside]).resolve().cwd).toBe(inside);
    expect(problemsOf(flags(['chroot', tmpdir()], ['cwd', 'relative']))).toEqual([
      "--cwd: expected an absolute path, got 'relative'",
    ]);
  });

  it('a mount at the root itself or through `..` is refused by its flag', () => {
    for (const text of ['/:/tmp', '//.:/tmp', '/x/../y:/tmp', '/..:/tmp:ro']) {
      expect(problemsOf(flags(['chroot', tmpdir()], ['fs-mount', text]))).toEqual([
        `--fs-mount: expected VIRT:HOST with VIRT a path below / (no \`..\`), got '${text}'`,
      ]);
    }
    expect(problemsOf(flags(['chroot', tmpdir()], ['fs-mount', '/x/./y:/tmp']))).toEqual([]);
  });

  it('a profile problem inside a table names its key', () => {
    const draft = profileDraft('[environment]\nvars = { A = "x", B = 1 }\n', 'e.toml');
    expect(problemsOf(draft)).toEqual([
      'e.toml:2:8: environment.vars.B: expected a string without NUL, got 1',
    ]);
  });

  it('indexes count across the sources of a list', () => {
    const draft = profileDraft('[filesystem]\nread = ["/usr", "/etc"]', 'p.toml');
    applyFlag(draft, policyFlags().find((f) => f.long === 'fs-read')!, 'nope');
    try {
      draft.resolve();
      expect.unreachable();
    } catch (error) {
      expect((error as PolicyError).problems[0]!.field).toBe('fsRead[2]');
    }
  });
});
