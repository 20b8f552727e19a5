import { openSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ModuleError, Supervisor } from '../src/index.js';
import type { DispatchModule, ModuleRef } from '../src/module.js';
import { orderModules } from '../src/registry.js';

const module = (name: string, order: Partial<DispatchModule> = {}): DispatchModule => ({
  name,
  syscalls: [],
  ...order,
});
const names = (modules: readonly DispatchModule[], order: number[]) =>
  order.map((index) => modules[index]!.name);

/** A ref whose module this thread gets from `load` (no worker is started in these tests). */
const ref = (value: DispatchModule): ModuleRef => ({
  module: `file:///nowhere/${value.name}.js`,
  load: async () => ({ default: value }),
});

describe('orderModules', () => {
  it('keeps the given order where no constraint says otherwise', () => {
    const modules = [module('a'), module('b'), module('c')];
    expect(names(modules, orderModules(modules))).toEqual(['a', 'b', 'c']);
  });

  it('moves a module after the ones it names, and before', () => {
    const modules = [
      module('a', { after: ['c'] }),
      module('b'),
      module('c'),
      module('d', { before: ['b'] }),
    ];
    expect(names(modules, orderModules(modules))).toEqual(['c', 'a', 'd', 'b']);
  });

  it('ignores names no module has', () => {
    const modules = [module('a', { after: ['gone'], before: ['also-gone'] }), module('b')];
    expect(names(modules, orderModules(modules))).toEqual(['a', 'b']);
  });

  it('refuses a cycle, naming its modules', () => {
    const modules = [
      module('free'),
      module('x', { before: ['y'] }),
      module('y', { before: ['z'] }),
      module('z', { before: ['x'] }),
    ];
    expect(() => orderModules(modules)).toThrow(ModuleError);
    expect(() => orderModules(modules)).toThrow(/cycle: .*'x'.*'y'.*'z'/);
    expect(() => orderModules([module('self', { after: ['self'] })])).not.toThrow();
  });
});

describe('Supervisor.load', () => {
  it('orders the built-in modules by their constraints, whatever the order given', async () => {
    const given = [
      module('last', { after: ['middle'] }),
      module('middle', { after: ['first'] }),
      module('first'),
    ];
    for (const order of [given, [...given].reverse(), [given[1]!, given[2]!, given[0]!]]) {
      const supervisor = await Supervisor.load({ modules: order.map(ref) });
      expect(supervisor.modules.map(({ name }) => name)).toEqual(['first', 'middle', 'last']);
      await supervisor.close();
    }
  });

  it('keeps plugins after the built-in modules, ordered among themselves', async () => {
    const supervisor = await Supervisor.load({
      modules: [ref(module('builtin', { before: ['second'] }))],
      plugins: [ref(module('second', { after: ['first'] })), ref(module('first'))],
    });
    expect(supervisor.modules.map(({ name }) => name)).toEqual(['builtin', 'first', 'second']);
    await supervisor.close();
  });

  it('refuses constraints that would put a plugin before a built-in module, and a cycle', async () => {
    await expect(
      Supervisor.load({
        modules: [ref(module('builtin', { after: ['plugin'] }))],
        plugins: [ref(module('plugin'))],
      }),
    ).rejects.toThrow(/'builtin' must come after 'plugin'/);
    await expect(
      Supervisor.load({
        modules: [ref(module('builtin'))],
        plugins: [ref(module('plugin', { before: ['builtin'] }))],
      }),
    ).rejects.toThrow(/'plugin' must come before 'builtin'/);
    await expect(
      Supervisor.load({
        modules: [ref(module('a', { after: ['b'] })), ref(module('b', { after: ['a'] }))],
      }),
    ).rejects.toThrow(ModuleError);
  });

  it('refuses constraints that are not lists of names', async () => {
    await expect(
      Supervisor.load({ modules: [ref({ ...module('a'), after: 'b' } as never)] }),
    ).rejects.toThrow(/after must be an array of module names/);
  });

  it('starts no worker thread until ready() is called; the worker imports the module by URL', async () => {
    const supervisor = await Supervisor.load({
      modules: [ref(module('a', { syscalls: ['openat'] }))],
    });
    expect(supervisor.notifiedSyscalls()).toEqual(['openat']);
    const listener = openSync('/dev/null', 'r'); // attach owns it, and closes it when it throws
    expect(() => supervisor.attach(listener, { reaperPid: process.pid })).toThrow(
      /no dispatch worker is running/,
    );
    await expect(supervisor.ready()).rejects.toThrow(
      /cannot load module 'file:\/\/\/nowhere\/a\.js'/,
    );
    await supervisor.close();
  });
});
