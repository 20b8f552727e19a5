import { fstatSync, openSync } from 'node:fs';
import { hostArch } from '@sandlock/sys';
import { describe, expect, it } from 'vitest';
import { ModuleError, Supervisor } from '../src/index.js';
import { buildTable, resolveModuleRef, validateModule } from '../src/registry.js';
import { testModule } from './support/sandbox.js';

const arch = hostArch();
const noop = () => ({ kind: 'continue' }) as const;

describe('validateModule', () => {
  it('accepts a plain object with a name, syscalls and handlers', () => {
    const module = { name: 'ok', syscalls: ['openat'], handlers: { openat: noop } };
    expect(validateModule(module, 'x', arch)).toBe(module);
  });

  it.each([
    [null, /does not export a module object/],
    [{ syscalls: [] }, /has no name/],
    [{ name: 'a', syscalls: 'openat' }, /syscalls must be an array/],
    [{ name: 'a', syscalls: ['no_such_call'] }, /'no_such_call' is not a syscall/],
    [{ name: 'a', syscalls: [], handlers: { openat: noop } }, /does not list it in syscalls/],
    [
      { name: 'a', syscalls: ['openat'], handlers: { openat: 1 } },
      /handlers.openat must be a function/,
    ],
    [
      { name: 'a', syscalls: ['openat'], deferred: { openat: 'x' } },
      /deferred.openat must be a function/,
    ],
    [{ name: 'a', syscalls: [], processExit: true }, /processExit must be a function/],
    [{ name: 'a', syscalls: [], takesDescriptors: true }, /takesDescriptors must be a function/],
  ])('refuses %j', (value, message) => {
    expect(() => validateModule(value, 'test', arch)).toThrow(message);
  });
});

describe('module references', () => {
  it('takes URLs, absolute paths and package names; refuses relative paths', () => {
    expect(resolveModuleRef({ module: new URL('file:///a/b.js') }).specifier).toBe(
      'file:///a/b.js',
    );
    expect(resolveModuleRef({ module: '/a/b.js' }).specifier).toBe('file:///a/b.js');
    expect(resolveModuleRef({ module: 'some-package/module' }).specifier).toBe(
      'some-package/module',
    );
    expect(() => resolveModuleRef({ module: './b.js' })).toThrow(/new URL\('\.\/b\.js'/);
  });

  it('refuses options that cannot reach the worker', () => {
    expect(() => resolveModuleRef({ module: '/a.js', options: { f: () => 1 } })).toThrow(
      /cannot be sent to the worker thread/,
    );
  });
});

describe('the dispatch table', () => {
  it('orders each chain by registration and leaves other syscalls empty', () => {
    const a = { name: 'a', syscalls: ['openat', 'connect'], handlers: { openat: noop } };
    const b = { name: 'b', syscalls: ['openat'], handlers: { openat: noop } };
    const c = { name: 'c', syscalls: ['connect'], deferred: { connect: noop } };
    const table = buildTable([a, b, c], [2, 0, 1], arch);
    const names = (syscall: number) => table[syscall]?.map((link) => link.module.name);
    expect(names(257)).toEqual(arch === 'x86_64' ? ['a', 'b'] : undefined);
    expect(table.filter(Boolean)).toHaveLength(2);
    const connect = table.find((chain) => chain?.[0]?.syscall === 'connect')!;
    expect(connect.map((link) => [link.module.name, link.handler])).toEqual([['c', undefined]]);
  });
});

describe('Supervisor.start', () => {
  it('refuses a module that registers on a syscall of the deny list, naming both', async () => {
    await expect(
      Supervisor.start({ plugins: [{ module: testModule('invalid.ts'), export: 'mounter' }] }),
    ).rejects.toThrow("module 'mounter' registers on 'mount', which the deny list denies");
  });

  it("refuses one that registers on a syscall of the sandbox's own deny list", async () => {
    const supervisor = await Supervisor.start({
      plugins: [{ module: testModule('scripted.ts'), export: 'first' }],
    });
    try {
      expect(supervisor.notifiedSyscalls()).toEqual(['getgid', 'getuid']);
      expect(() => supervisor.notifiedSyscalls({ deny: ['getuid'] })).toThrow(ModuleError);
      expect(() => supervisor.notifiedSyscalls({ deny: ['getuid'] })).toThrow(
        "module 'first' registers on 'getuid', which this sandbox's deny list denies",
      );
      // A module that is off for the sandbox is not in the way.
      expect(supervisor.notifiedSyscalls({ deny: ['getuid'], policy: { off: ['first'] } })).toEqual(
        [],
      );
    } finally {
      await supervisor.close();
    }
  });

  it('reports what is wrong with a module file', async () => {
    await expect(
      Supervisor.start({ plugins: [{ module: testModule('invalid.ts'), export: 'notAModule' }] }),
    ).rejects.toThrow(/does not export a module object \(got number\)/);
    await expect(Supervisor.start({ plugins: [{ module: '/no/such/module.js' }] })).rejects.toThrow(
      /cannot load module 'file:\/\/\/no\/such\/module.js'/,
    );
    const scripted = testModule('scripted.ts');
    await expect(
      Supervisor.start({
        modules: [{ module: scripted, export: 'first' }],
        plugins: [{ module: scripted, export: 'first' }],
      }),
    ).rejects.toThrow("two modules are named 'first'");
  });

  it('without modules notifies nothing and has no listener to attach', async () => {
    const supervisor = await Supervisor.start();
    try {
      expect(supervisor.notifiedSyscalls({ policy: {} })).toEqual([]);
      expect(supervisor.modules).toEqual([]);
      const fd = openSync('/dev/null', 'r');
      expect(() => supervisor.attach(fd, { reaperPid: process.pid })).toThrow(/no modules/);
      // attach owns the fd even when it throws.
      expect(() => fstatSync(fd)).toThrow(/EBADF/);
    } finally {
      await supervisor.close();
    }
  });

  it("names the modules on for a policy that take the caller's descriptors", async () => {
    const file = testModule('descriptors.ts');
    const supervisor = await Supervisor.start({
      modules: [
        { module: file, export: 'taking' },
        { module: file, export: 'walking' },
      ],
    });
    try {
      expect(supervisor.modulesTakingDescriptors({ policy: { sockets: true } })).toEqual([
        'taking',
      ]);
      expect(supervisor.modulesTakingDescriptors({ policy: {} })).toEqual([]);
      // Off: it takes nothing, whatever it would take.
      expect(supervisor.modulesTakingDescriptors({ policy: { sockets: true, off: true } })).toEqual(
        [],
      );
    } finally {
      await supervisor.close();
    }
  });

  it('lists built-in modules before plugins', async () => {
    const scripted = testModule('scripted.ts');
    const supervisor = await Supervisor.start({
      plugins: [{ module: scripted, export: 'third' }],
      modules: [{ module: scripted, export: 'second' }],
    });
    try {
      expect(supervisor.modules.map((module) => module.name)).toEqual(['second', 'third']);
    } finally {
      await supervisor.close();
    }
  });
});
