import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { SYSTEM, sandlock } from './helpers.js';

const EXAMPLES = fileURLToPath(new URL('../../../examples/profiles/', import.meta.url));
const BUILD = join(EXAMPLES, 'build.toml');
const REPRODUCIBLE = join(EXAMPLES, 'reproducible.toml');

const scratch = mkdtempSync(join(tmpdir(), 'sandlock-profiles-'));
const config = join(scratch, 'config');
const profiles = join(config, 'sandlock', 'profiles');
const withConfig = { env: { ...process.env, XDG_CONFIG_HOME: config } };
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('profiles', () => {
  it('reproducible.toml: the same host name, CPUs, clock and bytes every run', () => {
    const probe =
      'hostname; nproc; date -u +%Y; head -c 16 /dev/urandom | od -An -tx1; ls -f /usr | head -3';
    const first = sandlock(['run', '-p', REPRODUCIBLE, '--', 'sh', '-c', probe]);
    expect(first.stderr).toBe('');
    expect(first.status).toBe(0);
    const [hostname, cpus, year] = first.stdout.split('\n');
    expect([hostname, cpus, year]).toEqual(['sandbox', '1', '2000']);
    expect(sandlock(['run', '-p', REPRODUCIBLE, '--', 'sh', '-c', probe]).stdout).toBe(
      first.stdout,
    );
    // A flag replaces the profile's single value.
    const other = sandlock(['run', '-p', REPRODUCIBLE, '--hostname', 'other', '--', 'hostname']);
    expect(other.stdout).toBe('other\n');
  });

  it('build.toml: a clean environment, a denied file, limits; -w adds to its lists', () => {
    const work = join(scratch, 'work');
    mkdirSync(work);
    const result = sandlock([
      'run',
      '-p',
      BUILD,
      '-w',
      work,
      '--',
      'sh',
      '-c',
      `echo "$PATH"; env | wc -l; ulimit -c; ulimit -n; echo made > ${work}/out; cat /etc/shadow`,
    ]);
    expect(result.status).not.toBe(0);
    expect(result.stdout).toBe('/usr/local/bin:/usr/bin:/bin\n4\n0\n1024\n');
    expect(result.stderr).toMatch(/\/etc\/shadow: Permission denied/);
    expect(readFileSync(join(work, 'out'), 'utf8')).toBe('made\n');
  });

  it('the example profiles keep /etc/shadow, /etc/gshadow and /etc/sudoers closed, also to root', () => {
    const secrets = ['/etc/shadow', '/etc/gshadow', '/etc/sudoers'].filter((path) =>
      existsSync(path),
    );
    expect(secrets).toContain('/etc/shadow');
    for (const profile of [BUILD, REPRODUCIBLE]) {
      const result = sandlock(['run', '-p', profile, '--', 'sh', '-c', `cat ${secrets.join(' ')}`]);
      expect(result.stdout, profile).toBe('');
      for (const path of secrets) {
        expect(result.stderr, profile).toContain(`${path}: Permission denied`);
      }
    }
  });

  it('a profile directory that cannot be read is said so, not taken for an empty one', () => {
    // A symlink to itself: ELOOP, which root gets too (unlike EACCES).
    const loop = join(scratch, 'loop-config');
    const dir = join(loop, 'sandlock', 'profiles');
    mkdirSync(join(loop, 'sandlock'), { recursive: true });
    symlinkSync('profiles', dir);
    const env = { env: { ...process.env, XDG_CONFIG_HOME: loop } };
    expect(sandlock(['profile', 'list'], env)).toMatchObject({
      status: 1,
      stdout: '',
      stderr: `sandlock profile: cannot read the profile directory ${dir}: ELOOP: too many symbolic links encountered\n`,
    });
    const reason = `cannot read ${join(dir, 'build.toml')}: ELOOP: too many symbolic links encountered`;
    expect(sandlock(['profile', 'show', 'build'], env)).toMatchObject({
      status: 1,
      stderr: `sandlock profile: ${reason}\n`,
    });
    expect(sandlock(['run', '-p', 'build', '--', 'true'], env)).toMatchObject({
      status: 125,
      stderr: `sandlock run: -p/--profile: ${reason}\n`,
    });
  });

  it('named profiles: list, show, path, and run -p NAME', () => {
    expect(sandlock(['profile', 'list'], withConfig)).toMatchObject({ status: 0, stdout: '' });
    mkdirSync(profiles, { recursive: true });
    copyFileSync(REPRODUCIBLE, join(profiles, 'repro.toml'));
    writeFileSync(join(profiles, 'a-first.toml'), '[limits]\nprocesses = 4\n');
    writeFileSync(join(profiles, 'not a profile.txt'), '');
    expect(sandlock(['profile', 'list'], withConfig).stdout).toBe('a-first\nrepro\n');
    expect(sandlock(['profile', 'path', 'repro'], withConfig).stdout).toBe(
      `${join(profiles, 'repro.toml')}\n`,
    );
    expect(sandlock(['profile', 'show', 'repro'], withConfig).stdout).toBe(
      readFileSync(REPRODUCIBLE, 'utf8'),
    );
    expect(sandlock(['run', '-p', 'repro', '--', 'hostname'], withConfig).stdout).toBe('sandbox\n');
    const missing = sandlock(['run', '-p', 'nope', '--', 'true'], withConfig);
    expect(missing.status).toBe(125);
    expect(missing.stderr).toBe(
      `sandlock run: -p/--profile: no profile 'nope' in ${profiles} (see sandlock profile list)\n`,
    );
    expect(sandlock(['profile', 'show', '../etc/passwd'], withConfig).status).toBe(125);
    expect(sandlock(['profile', 'show', 'nope'], withConfig).status).toBe(1);
  });

  it('a bad profile: every problem with its file, line, column and key, flags included', () => {
    const bad = join(scratch, 'bad.toml');
    writeFileSync(bad, '[limits]\nmemroy = "1G"\nprocesses = 0\n[filesystem]\nread = ["rel"]\n');
    const result = sandlock(['run', '-p', bad, '-m', '1', '--', 'true']);
    expect(result.status).toBe(125);
    expect(result.stderr).toBe(
      [
        'sandlock: invalid policy (4 problems):',
        `  ${bad}:2:1: limits.memroy: unknown key; did you mean 'memory'? (in [limits]: cpu_cores, open_files, memory, processes, cpu)`,
        `  ${bad}:5:9: filesystem.read: expected an absolute path, got "rel"`,
        "  -m/--max-memory: expected a size like 64M or 2G, got '1'",
        `  ${bad}:3:13: limits.processes: expected a number of processes from 1 to 4194304, got 0`,
        '',
      ].join('\n'),
    );
  });

  it('sandlock policy prints the policy a profile and flags make, and the schemas', () => {
    const result = sandlock([
      'policy',
      '-p',
      BUILD,
      '-r',
      '/tmp',
      '-m',
      '64M',
      ...SYSTEM.slice(0, 2),
    ]);
    expect(result.status).toBe(0);
    const policy = JSON.parse(result.stdout);
    expect(policy.system).toBe(true);
    expect(policy.fsRead).toEqual(['/tmp', '/usr']);
    expect(policy.maxMemory).toBe(64 << 20);
    expect(policy.maxProcesses).toBe(64);
    expect(policy.cleanEnv).toBe(true);
    const schema = JSON.parse(sandlock(['policy', '--schema', 'profile']).stdout);
    expect(Object.keys(schema.properties)).toContain('limits');
    expect(schema.properties.limits.properties.memory.description).toMatch(/memory/);
    const json = JSON.parse(sandlock(['policy', '--schema', 'policy']).stdout);
    expect(Object.keys(json.properties)).toContain('maxMemory');
    // `--schema` alone, as docs/design.md writes it, is the policy's.
    expect(JSON.parse(sandlock(['policy', '--schema']).stdout)).toEqual(json);
    expect(JSON.parse(sandlock(['policy', '--schema', '--json-errors']).stdout)).toEqual(json);
    expect(sandlock(['policy', '--schema', 'yaml']).status).toBe(125);
  });
});
