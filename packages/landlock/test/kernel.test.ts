// Real Landlock, real processes: rulesets built here are enforced on programs
// started through the exec stub, and the programs' own errors are checked.

import { mkdirSync, mkdtempSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { close, fcntl } from '@sandlock/sys';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  detectLandlock,
  LandlockAbiError,
  LandlockPathError,
  LandlockRuleError,
  type LandlockRuleset,
  LandlockUnavailableError,
  landlockRuleset,
  type RulesetOptions,
} from '../src/index.js';
import { openFds, python3, runSandboxed, withSystem } from './helpers.js';

const support = detectLandlock();
const noLandlock = !support.available;
if (noLandlock) console.warn(`skipping kernel tests: ${support.reason}`);
const abi = support.abi;
const skipBelow = (needed: number, what: string) => {
  const skip = noLandlock || abi < needed;
  if (skip && !noLandlock)
    console.warn(`skipping ${what}: needs Landlock ABI ${needed}, kernel has ${abi}`);
  return skip;
};
const noPython = python3 === undefined;
if (noPython)
  console.warn('skipping the python3 tests: python3 is not installed in /usr/bin or /bin');

let root = '';
const rulesets: LandlockRuleset[] = [];

/** Builds on the real kernel, in best-effort mode unless told otherwise; closed after each test. */
function build(options: RulesetOptions, rules: (b: ReturnType<typeof landlockRuleset>) => unknown) {
  const builder = withSystem(landlockRuleset(options));
  rules(builder);
  const ruleset = builder.create();
  rulesets.push(ruleset);
  return ruleset;
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'sandlock-landlock-'));
  for (const dir of ['outside', 'readonly', 'writable', 'files']) mkdirSync(join(root, dir));
  writeFileSync(join(root, 'outside', 'secret.txt'), 'secret\n');
  writeFileSync(join(root, 'readonly', 'data.txt'), 'data\n');
  writeFileSync(join(root, 'files', 'one.txt'), 'one\n');
  writeFileSync(join(root, 'files', 'two.txt'), 'two\n');
});

afterEach(() => {
  for (const ruleset of rulesets.splice(0)) if (ruleset.fd !== null) close(ruleset.fd);
});

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('detectLandlock', () => {
  it.skipIf(noLandlock)('reports the ABI version of this kernel', () => {
    expect(support.available).toBe(true);
    expect(support.abi).toBeGreaterThanOrEqual(1);
    expect(Number.isInteger(support.errata)).toBe(true);
  });
});

describe.skipIf(noLandlock)('create()', () => {
  it('returns a close-on-exec ruleset fd and closes every path fd', () => {
    const before = openFds();
    const ruleset = build({}, (b) => b.read(join(root, 'readonly')));
    expect(ruleset.fd).not.toBeNull();
    const fd = ruleset.fd!;
    expect(readlinkSync(`/proc/self/fd/${fd}`)).toBe('anon_inode:[landlock-ruleset]');
    expect(fcntl(fd, 1 /* F_GETFD */) & 1 /* FD_CLOEXEC */).toBe(1);
    expect(openFds().filter((n) => !before.includes(n))).toEqual([fd]);
  });

  it('reports what it enforces', () => {
    const ruleset = build({ compatibility: 'best-effort' }, () => {});
    expect(ruleset.abi).toBe(Math.min(abi, 7));
    if (abi >= 6) {
      expect(ruleset.status).toBe('full');
      expect(ruleset.dropped).toEqual([]);
      expect(ruleset.handled.scopes).toEqual(['abstract_unix_socket', 'signal']);
    }
    expect(ruleset.handled.fs).toContain('read_file');
  });

  it('names a missing path, and leaks no fd', () => {
    const before = openFds();
    const missing = join(root, 'does-not-exist');
    expect(() => build({}, (b) => b.read(join(root, 'readonly')).read(missing))).toThrow(
      new LandlockPathError(
        missing,
        'ENOENT',
        `Landlock rule path '${missing}' does not exist (ENOENT); mark the rule optional to skip it`,
      ),
    );
    expect(openFds()).toEqual(before);
  });

  it('skips an optional missing path and lists it', () => {
    const missing = join(root, 'readonly', 'data.txt', 'below-a-file');
    const ruleset = build({}, (b) =>
      b.read(join(root, 'nothing-here'), { optional: true }).read(missing, { optional: true }),
    );
    expect(ruleset.skippedPaths).toEqual([
      { path: join(root, 'nothing-here'), code: 'ENOENT' },
      { path: missing, code: 'ENOTDIR' },
    ]);
    expect(ruleset.fd).not.toBeNull();
  });

  it('refuses directory rights on a file by name, and leaks no fd', () => {
    const before = openFds();
    const file = join(root, 'files', 'one.txt');
    expect(() => build({}, (b) => b.allowPath(file, ['read_file', 'read_dir']))).toThrow(
      LandlockRuleError,
    );
    expect(() => build({}, (b) => b.allowPath(file, ['read_file', 'read_dir']))).toThrow(
      `'read_dir' only apply to directories`,
    );
    expect(openFds()).toEqual(before);
  });

  it('hard mode names the right the kernel lacks', () => {
    expect(() =>
      build({ abi: 4, handle: { scopes: false } }, (b) => b.write(join(root, 'writable'))),
    ).toThrow(new LandlockAbiError([{ feature: 'ioctl_dev', needsAbi: 5 }], 4));
    expect(() => build({ abi: 4, handle: { scopes: false } }, () => {})).toThrow(
      "Landlock right 'ioctl_dev' needs ABI 5; this kernel has ABI 4",
    );
  });

  it('simulated absence: an error in hard mode, status none in best-effort', () => {
    expect(() => build({ abi: 0 }, () => {})).toThrow(LandlockUnavailableError);
    const ruleset = build({ abi: 0, compatibility: 'best-effort' }, () => {});
    expect(ruleset).toMatchObject({ fd: null, abi: 0, status: 'none', restrictFlags: 0 });
    expect(ruleset.handled).toEqual({ fs: [], net: [], scopes: [] });
  });

  it('refuses an ABI override above the kernel', () => {
    expect(() => build({ abi: abi + 1 }, () => {})).toThrow(`is above this kernel's ABI ${abi}`);
  });
});

describe.skipIf(noLandlock)('filesystem enforcement', () => {
  it('denies reading outside the rules and allows it inside', async () => {
    const ruleset = build({}, (b) => b.read(join(root, 'readonly')));
    const denied = await runSandboxed(ruleset, ['cat', join(root, 'outside', 'secret.txt')]);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toContain('Permission denied');
    const allowed = await runSandboxed(ruleset, ['cat', join(root, 'readonly', 'data.txt')]);
    expect(allowed).toMatchObject({ code: 0, stdout: 'data\n' });
  });

  it('denies writing under a read rule and allows it under a write rule', async () => {
    const ruleset = build({}, (b) => b.read(join(root, 'readonly')).write(join(root, 'writable')));
    const readonly = join(root, 'readonly', 'new.txt');
    const denied = await runSandboxed(ruleset, ['sh', '-c', `echo x > ${readonly}`]);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toContain('Permission denied');

    const dir = join(root, 'writable');
    const script = `set -e; cd ${dir}; echo hi > a; mkdir d; mv a d/b; ln -s d/b link; cat link; : > d/b; rm -r d link; ls -A`;
    const allowed = await runSandboxed(ruleset, ['sh', '-c', script]);
    expect(allowed).toMatchObject({ code: 0, stdout: 'hi\n', stderr: '' });
  });

  it('a rule on a regular file allows that file only', async () => {
    const one = join(root, 'files', 'one.txt');
    const ruleset = build({}, (b) => b.read(one));
    const allowed = await runSandboxed(ruleset, ['cat', one]);
    expect(allowed).toMatchObject({ code: 0, stdout: 'one\n' });
    const sibling = await runSandboxed(ruleset, ['cat', join(root, 'files', 'two.txt')]);
    expect(sibling.code).not.toBe(0);
    expect(sibling.stderr).toContain('Permission denied');
    const listing = await runSandboxed(ruleset, ['ls', join(root, 'files')]);
    expect(listing.stderr).toContain('Permission denied');
  });

  it('a rule on a symlink covers what the link points to', async () => {
    const link = join(root, 'link-to-readonly');
    symlinkSync(join(root, 'readonly'), link);
    const ruleset = build({}, (b) => b.read(link));
    const result = await runSandboxed(ruleset, ['cat', join(root, 'readonly', 'data.txt')]);
    expect(result).toMatchObject({ code: 0, stdout: 'data\n' });
  });

  it('noFollow: a symlink grants nothing; skipped when optional, else an error without a leaked fd', async () => {
    const link = join(root, 'link-to-outside');
    symlinkSync(join(root, 'outside'), link);
    const ruleset = build({}, (b) => b.read(link, { optional: true, noFollow: true }));
    expect(ruleset.skippedPaths).toEqual([{ path: link, code: 'ELOOP' }]);
    const result = await runSandboxed(ruleset, ['cat', join(root, 'outside', 'secret.txt')]);
    expect(result.code).not.toBe(0);
    expect(result.stdout).toBe('');
    const before = openFds();
    expect(() => build({}, (b) => b.read(link, { noFollow: true }))).toThrow(
      new LandlockPathError(link, 'ELOOP', `Landlock rule path '${link}' is a symlink`),
    );
    expect(openFds()).toEqual(before);
    // Not a symlink: followed rules and noFollow rules agree.
    const plain = build({}, (b) => b.read(join(root, 'readonly'), { noFollow: true }));
    expect(plain.skippedPaths).toEqual([]);
  });

  it('a write rule on a file lets it be overwritten, not removed', async () => {
    const file = join(root, 'files', 'rw.txt');
    writeFileSync(file, 'old\n');
    const ruleset = build({}, (b) => b.write(file));
    const result = await runSandboxed(ruleset, [
      'sh',
      '-c',
      `echo new > ${file} && cat ${file}; rm -f ${file}`,
    ]);
    expect(result.stdout).toBe('new\n');
    expect(result.stderr).toContain('Permission denied');
  });
});

describe.skipIf(skipBelow(4, 'TCP rules'))('TCP enforcement', () => {
  const servers: Server[] = [];
  const listen = async () => {
    const server = createServer((socket) => socket.end('hello\n'));
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as { port: number }).port;
  };
  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  });

  const connect = (port: number) =>
    `import socket\ns = socket.create_connection(("127.0.0.1", ${port}))\nprint(s.recv(16).decode(), end="")`;
  const bind = (port: number) =>
    `import socket\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(("127.0.0.1", ${port}))\nprint("bound", ${port})`;

  it.skipIf(noPython)('allows connect to listed ports only', async () => {
    const allowedPort = await listen();
    const otherPort = await listen();
    const ruleset = build({}, (b) => b.connectTcp(allowedPort));
    const allowed = await runSandboxed(ruleset, ['python3', '-c', connect(allowedPort)]);
    expect(allowed).toMatchObject({ code: 0, stdout: 'hello\n' });
    const denied = await runSandboxed(ruleset, ['python3', '-c', connect(otherPort)]);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toContain('PermissionError: [Errno 13] Permission denied');
  });

  it.skipIf(noPython)('allows bind to listed ports only (ranges too)', async () => {
    // Free ports: listen, note the port, close; bound again right away below.
    const free = await listen();
    await new Promise((resolve) => servers.pop()!.close(resolve));
    const ruleset = build({}, (b) => b.bindTcp({ from: free, to: Math.min(free + 1, 65535) }));
    const allowed = await runSandboxed(ruleset, ['python3', '-c', bind(free)]);
    expect(allowed).toMatchObject({ code: 0, stdout: `bound ${free}\n` });
    const otherPort = free === 65535 ? free - 1 : free + 2;
    const denied = await runSandboxed(ruleset, ['python3', '-c', bind(otherPort)]);
    expect(denied.stderr).toContain('PermissionError: [Errno 13] Permission denied');
  });
});

describe.skipIf(skipBelow(6, 'scoping'))('IPC scoping', () => {
  it('a sandboxed process cannot signal a process outside its domain', async () => {
    const ruleset = build({}, () => {});
    const script = `kill -0 $$ && echo self-ok; kill -0 ${process.pid} && echo outside-ok; true`;
    const result = await runSandboxed(ruleset, ['sh', '-c', script]);
    expect(result.stdout).toBe('self-ok\n');
    expect(result.stderr).toContain('Operation not permitted');
  });

  it('signals work again when signal scoping is not handled', async () => {
    const ruleset = build({ handle: { scopes: ['abstract_unix_socket'] } }, () => {});
    const result = await runSandboxed(ruleset, [
      'sh',
      '-c',
      `kill -0 ${process.pid} && echo outside-ok`,
    ]);
    expect(result).toMatchObject({ code: 0, stdout: 'outside-ok\n' });
  });

  it.skipIf(noPython)(
    'a sandboxed process cannot connect to an abstract socket made outside',
    async () => {
      const name = `sandlock-test-${process.pid}-${Date.now()}`;
      const server = createServer((socket) => socket.end('hi\n'));
      await new Promise<void>((resolve) => server.listen(`\0${name}`, resolve));
      try {
        // libuv binds an abstract name padded with NULs to the whole sun_path,
        // so the client pads its address the same way.
        const script = `import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect("\\0${name}".ljust(108, "\\0"))\nprint(s.recv(8).decode(), end="")`;
        const unscoped = build({ handle: { scopes: ['signal'] } }, () => {});
        expect(await runSandboxed(unscoped, ['python3', '-c', script])).toMatchObject({
          code: 0,
          stdout: 'hi\n',
        });
        const scoped = build({}, () => {});
        const denied = await runSandboxed(scoped, ['python3', '-c', script]);
        expect(denied.code).not.toBe(0);
        expect(denied.stderr).toContain('PermissionError: [Errno 1] Operation not permitted');
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
    },
  );
});

describe.skipIf(skipBelow(6, 'the simulated ABI 3'))('best-effort on a simulated older ABI', () => {
  it('reports what was dropped, and the kernel enforces the rest', async () => {
    const writable = join(root, 'writable');
    const ruleset = build({ compatibility: 'best-effort', abi: 3 }, (b) =>
      b.write(writable).connectTcp(443),
    );
    expect(ruleset.status).toBe('partial');
    expect(ruleset.abi).toBe(3);
    expect(ruleset.dropped.map((d) => [d.feature, d.needsAbi])).toEqual([
      ['bind_tcp', 4],
      ['connect_tcp', 4],
      ['ioctl_dev', 5],
      ['abstract_unix_socket', 6],
      ['signal', 6],
    ]);
    expect(ruleset.dropped.find((d) => d.feature === 'ioctl_dev')?.rules).toEqual([
      `write ${writable}`,
    ]);
    expect(ruleset.dropped.find((d) => d.feature === 'connect_tcp')?.rules).toEqual([
      'connect_tcp 443',
    ]);
    expect(ruleset.handled).toEqual({
      fs: expect.not.arrayContaining(['ioctl_dev']),
      net: [],
      scopes: [],
    });
    // Signals are not scoped at ABI 3, files still are.
    const script = `kill -0 ${process.pid} && echo signal-ok; cat ${join(root, 'outside', 'secret.txt')}`;
    const result = await runSandboxed(ruleset, ['sh', '-c', script]);
    expect(result.stdout).toBe('signal-ok\n');
    expect(result.stderr).toContain('Permission denied');
  });
});
