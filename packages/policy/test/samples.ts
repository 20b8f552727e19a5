import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FieldName } from '../src/index.js';

/** A directory the samples' paths point into (fsWrite, the plugin file). */
export const scratch = mkdtempSync(join(tmpdir(), 'sandlock-policy-'));
const plugin = join(scratch, 'plugin.js');
writeFileSync(plugin, 'export default {};\n');
// The policy checks only that they exist; packages/http reads them.
const caCert = join(scratch, 'ca.pem');
const caKey = join(scratch, 'ca-key.pem');
writeFileSync(caCert, '');
writeFileSync(caKey, '');
/** Removes the files the samples name; call from afterAll. */
export function removeSampleFiles(): void {
  rmSync(scratch, { recursive: true, force: true });
}

/**
 * One value of each field, written the four ways a user writes it: builder
 * calls, command-line flags, a profile's TOML, and the JSON policy. A field
 * added to the table without a row here fails the first test.
 */
export const SAMPLES: Record<
  FieldName,
  {
    builder: [method: string, ...args: unknown[]][];
    flags: string[];
    toml: string;
    json: unknown;
    /** Fields this one is only valid with (httpCa needs httpKey): their samples are given too. */
    alongside?: FieldName[];
  }
> = {
  fsRead: {
    builder: [['fsRead', '/usr', '/etc']],
    flags: ['-r', '/usr', '--fs-read', '/etc'],
    toml: '[filesystem]\nread = ["/usr", "/etc"]',
    json: ['/usr', '/etc'],
  },
  fsWrite: {
    builder: [['fsWrite', scratch]],
    flags: ['-w', scratch],
    toml: `[filesystem]\nwrite = ["${scratch}"]`,
    json: [scratch],
  },
  fsDeny: {
    builder: [['fsDeny', '/etc/shadow']],
    flags: ['--fs-deny', '/etc/shadow'],
    toml: '[filesystem]\ndeny = ["/etc/shadow"]',
    json: ['/etc/shadow'],
  },
  system: {
    builder: [['system']],
    flags: ['--system'],
    toml: '[filesystem]\nsystem = true',
    json: true,
  },
  devices: {
    builder: [['devices', false]],
    flags: ['--no-devices'],
    toml: '[filesystem]\ndevices = false',
    json: false,
  },
  workdir: {
    builder: [['workdir', scratch]],
    flags: ['--workdir', scratch],
    toml: `[workdir]\ndir = "${scratch}"`,
    json: scratch,
  },
  onExit: {
    builder: [['onExit', 'keep']],
    flags: ['--on-exit', 'keep'],
    toml: '[workdir]\non_exit = "keep"',
    json: 'keep',
    alongside: ['workdir'],
  },
  onError: {
    builder: [['onError', 'commit']],
    flags: ['--on-error', 'commit'],
    toml: '[workdir]\non_error = "commit"',
    json: 'commit',
    alongside: ['workdir'],
  },
  maxDisk: {
    builder: [['maxDisk', '1G']],
    flags: ['--max-disk', '1G'],
    toml: '[workdir]\nmax_disk = "1G"',
    json: 1024 * 1024 * 1024,
    alongside: ['workdir'],
  },
  fsStorage: {
    builder: [['fsStorage', '/var/tmp/layers']],
    flags: ['--fs-storage', '/var/tmp/layers'],
    toml: '[workdir]\nstorage = "/var/tmp/layers"',
    json: '/var/tmp/layers',
    alongside: ['workdir'],
  },
  chroot: {
    builder: [['chroot', scratch]],
    flags: ['--chroot', scratch],
    toml: `[filesystem]\nchroot = "${scratch}"`,
    json: scratch,
  },
  fsMount: {
    builder: [['fsMount', '/proc:/proc', '/data:/tmp:ro']],
    flags: ['--fs-mount', '/proc:/proc', '--fs-mount', '/data:/tmp:ro'],
    toml: '[filesystem]\nmount = ["/proc:/proc", "/data:/tmp:ro"]',
    json: ['/proc:/proc', '/data:/tmp:ro'],
    alongside: ['chroot'],
  },
  env: {
    builder: [
      ['env', 'A', '1'],
      ['env', { B: 'x=y' }],
    ],
    flags: ['--env', 'A=1', '--env', 'B=x=y'],
    toml: '[environment]\nvars = { A = "1", B = "x=y" }',
    json: { A: '1', B: 'x=y' },
  },
  cleanEnv: {
    builder: [['cleanEnv']],
    flags: ['--clean-env'],
    toml: '[environment]\nclean = true',
    json: true,
  },
  cwd: {
    builder: [['cwd', '/tmp']],
    flags: ['--cwd', '/tmp'],
    toml: '[program]\ncwd = "/tmp"',
    json: '/tmp',
  },
  noRandomizeMemory: {
    builder: [['noRandomizeMemory']],
    flags: ['--no-randomize-memory'],
    toml: '[program]\nno_randomize_memory = true',
    json: true,
  },
  noHugePages: {
    builder: [['noHugePages']],
    flags: ['--no-huge-pages'],
    toml: '[program]\nno_huge_pages = true',
    json: true,
  },
  noCoredump: {
    builder: [['noCoredump']],
    flags: ['--no-coredump'],
    toml: '[program]\nno_coredump = true',
    json: true,
  },
  cpuCores: {
    builder: [['cpuCores', 0]],
    flags: ['--cpu-cores', '0'],
    toml: '[limits]\ncpu_cores = [0]',
    json: [0],
  },
  maxOpenFiles: {
    builder: [['maxOpenFiles', 64]],
    flags: ['--max-open-files', '64'],
    toml: '[limits]\nopen_files = 64',
    json: 64,
  },
  netBind: {
    builder: [['netBind', 8080, { from: 9000, to: 9010 }]],
    flags: ['--net-bind', '8080', '--net-bind', '9000-9010'],
    toml: '[network]\nbind = [8080, "9000-9010"]',
    json: [8080, { from: 9000, to: 9010 }],
  },
  netConnect: {
    builder: [['netConnect', 443]],
    flags: ['--net-connect', '443'],
    toml: '[network]\nconnect = [443]',
    json: [443],
  },
  noRawSockets: {
    builder: [['noRawSockets', false]],
    flags: ['--allow-raw-sockets'],
    toml: '[network]\nno_raw_sockets = false',
    json: false,
  },
  netAllow: {
    builder: [['netAllow', 'example.com:443', 'udp://[::1]:53']],
    flags: ['--net-allow', 'example.com:443', '--net-allow', 'udp://[::1]:53'],
    toml: '[network]\nallow = ["example.com:443", "udp://[::1]:53"]',
    json: ['example.com:443', 'udp://[::1]:53'],
  },
  netDeny: {
    builder: [['netDeny', '10.0.0.0/8']],
    flags: ['--net-deny', '10.0.0.0/8'],
    toml: '[network]\ndeny = ["10.0.0.0/8"]',
    json: ['10.0.0.0/8'],
  },
  netAllowBind: {
    builder: [['netAllowBind', '6379', 'udp://5353,6000-6010']],
    flags: ['--net-allow-bind', '6379', '--net-allow-bind', 'udp://5353,6000-6010'],
    toml: '[network]\nallow_bind = [6379, "udp://5353,6000-6010"]',
    json: ['6379', 'udp://5353,6000-6010'],
  },
  netDenyBind: {
    builder: [['netDenyBind', 'tcp://22', '*']],
    flags: ['--net-deny-bind', 'tcp://22', '--net-deny-bind', '*'],
    toml: '[network]\ndeny_bind = ["tcp://22", "*"]',
    json: ['tcp://22', '*'],
  },
  portRemap: {
    builder: [['portRemap']],
    flags: ['--port-remap'],
    toml: '[network]\nport_remap = true',
    json: true,
  },
  unix: {
    builder: [['unix', '/run/app.sock']],
    flags: ['--unix', '/run/app.sock'],
    toml: '[network]\nunix = ["/run/app.sock"]',
    json: ['/run/app.sock'],
  },
  bestEffort: {
    builder: [['bestEffort']],
    flags: ['--best-effort'],
    toml: '[sandbox]\nbest_effort = true',
    json: true,
  },
  maxMemory: {
    builder: [['maxMemory', '64M']],
    flags: ['-m', '64M'],
    toml: '[limits]\nmemory = "64M"',
    json: 64 * 1024 * 1024,
  },
  maxProcesses: {
    builder: [['maxProcesses', 10]],
    flags: ['-P', '10'],
    toml: '[limits]\nprocesses = 10',
    json: 10,
  },
  maxCpu: {
    builder: [['maxCpu', 50]],
    flags: ['--max-cpu', '50'],
    toml: '[limits]\ncpu = 50',
    json: 50,
  },
  plugins: {
    builder: [['plugin', plugin, { log: '/tmp/x' }]],
    flags: ['--plugin', JSON.stringify({ module: plugin, options: { log: '/tmp/x' } })],
    toml: `[[sandbox.plugins]]\nmodule = "${plugin}"\noptions = { log = "/tmp/x" }`,
    json: [{ module: plugin, options: { log: '/tmp/x' } }],
  },
  hostname: {
    builder: [['hostname', 'box']],
    flags: ['--hostname', 'box'],
    toml: '[determinism]\nhostname = "box"',
    json: 'box',
  },
  numCpus: {
    builder: [['numCpus', 2]],
    flags: ['--num-cpus', '2'],
    toml: '[determinism]\nnum_cpus = 2',
    json: 2,
  },
  deterministicDirs: {
    builder: [['deterministicDirs']],
    flags: ['--deterministic-dirs'],
    toml: '[determinism]\nsorted_dirs = true',
    json: true,
  },
  randomSeed: {
    builder: [['randomSeed', 2n ** 64n - 1n]],
    flags: ['--random-seed', '18446744073709551615'],
    toml: '[determinism]\nrandom_seed = 18446744073709551615',
    json: '18446744073709551615',
  },
  timeStart: {
    builder: [['timeStart', new Date(Date.UTC(2000, 0, 1))]],
    flags: ['--time-start', '2000-01-01T01:00:00+01:00'],
    toml: '[determinism]\ntime_start = 2000-01-01T00:00:00Z',
    json: Date.UTC(2000, 0, 1),
  },
  httpAllow: {
    builder: [['httpAllow', 'GET api.example.com/v1/**', 'POST *.example.com:8443/upload']],
    flags: [
      '--http-allow',
      'GET api.example.com/v1/**',
      '--http-allow',
      'POST *.example.com:8443/upload',
    ],
    toml: '[http]\nallow = ["GET api.example.com/v1/**", "POST *.example.com:8443/upload"]',
    json: ['GET api.example.com/v1/**', 'POST *.example.com:8443/upload'],
  },
  httpDeny: {
    builder: [['httpDeny', '* api.example.com/admin/**']],
    flags: ['--http-deny', '* api.example.com/admin/**'],
    toml: '[http]\ndeny = ["* api.example.com/admin/**"]',
    json: ['* api.example.com/admin/**'],
  },
  httpCa: {
    builder: [['httpCa', caCert]],
    flags: ['--http-ca', caCert],
    toml: `[http]\nca = "${caCert}"`,
    json: caCert,
    alongside: ['httpKey'],
  },
  httpKey: {
    builder: [['httpKey', caKey]],
    flags: ['--http-key', caKey],
    toml: `[http]\nkey = "${caKey}"`,
    json: caKey,
    alongside: ['httpCa'],
  },
  credentials: {
    builder: [
      ['credential', 'TOKEN', 'env:GITHUB_TOKEN'],
      ['credential', 'KEY', 'file:/run/secrets/key'],
    ],
    flags: ['--credential', 'TOKEN=env:GITHUB_TOKEN', '--credential', 'KEY=file:/run/secrets/key'],
    toml: '[http]\ncredentials = { TOKEN = "env:GITHUB_TOKEN", KEY = "file:/run/secrets/key" }',
    json: { TOKEN: 'env:GITHUB_TOKEN', KEY: 'file:/run/secrets/key' },
  },
  httpAuth: {
    builder: [
      ['httpAuth', 'GET api.example.com/** bearer TOKEN', '* example.com header:X-Key KEY'],
    ],
    flags: [
      '--http-auth',
      'GET api.example.com/** bearer TOKEN',
      '--http-auth',
      '* example.com header:X-Key KEY',
    ],
    toml: '[http]\nauth = ["GET api.example.com/** bearer TOKEN", "* example.com header:X-Key KEY"]',
    json: ['GET api.example.com/** bearer TOKEN', '* example.com header:X-Key KEY'],
    alongside: ['credentials'],
  },
};

/** Every sample's TOML as one profile (a section opened once). */
/** Fields a policy has only one of (netAllow or netDeny): the whole profile leaves these out. */
export const EXCLUDED_FROM_WHOLE: readonly FieldName[] = ['netDeny', 'netDenyBind'];

export function wholeProfile(names?: readonly FieldName[]): string {
  const sections = new Map<string, string[]>();
  for (const [name, sample] of Object.entries(SAMPLES)) {
    if (
      names === undefined
        ? EXCLUDED_FROM_WHOLE.includes(name as FieldName)
        : !names.includes(name as FieldName)
    )
      continue;
    for (const block of sample.toml.split(/\n(?=\[)/)) {
      const [header, ...lines] = block.split('\n');
      sections.set(header!, [...(sections.get(header!) ?? []), ...lines]);
    }
  }
  return [...sections].map(([header, lines]) => [header, ...lines].join('\n')).join('\n');
}
