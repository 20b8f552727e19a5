// The built-in modules state their chain order on themselves (after,
// before); the supervisor orders them so, whatever order they are given in.
import { DETERMINISM_MODULES } from '@sandlock/determinism';
import { type DispatchModule, type ModuleRef, Supervisor } from '@sandlock/dispatch';
import { FSMETA_MODULES } from '@sandlock/fsmeta';
import { PROCFS_MODULES } from '@sandlock/procfs';
import { RESOURCE_MODULES } from '@sandlock/resource';
import { expect, it } from 'vitest';

const BUILT_IN: readonly ModuleRef[] = [
  ...RESOURCE_MODULES,
  ...DETERMINISM_MODULES,
  ...PROCFS_MODULES,
  ...FSMETA_MODULES,
];

/** A shuffle of `list` by a small deterministic generator. */
function shuffled<T>(list: readonly T[], seed: number): T[] {
  const out = [...list];
  let state = seed;
  for (let index = out.length - 1; index > 0; index--) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    const other = state % (index + 1);
    [out[index], out[other]] = [out[other]!, out[index]!];
  }
  return out;
}

it('orders the built-in modules by their own constraints, whatever the list order', async () => {
  const modules = await Promise.all(
    BUILT_IN.map(async (ref) => (await ref.load!()).default as DispatchModule),
  );
  const constraints = modules.flatMap((module) => [
    ...(module.after ?? []).map((name) => [name, module.name] as const),
    ...(module.before ?? []).map((name) => [module.name, name] as const),
  ]);
  // The rules the list used to keep in comments, among them.
  expect(constraints).toEqual(
    expect.arrayContaining([
      ['proc-pids', 'proc-host'],
      ['proc-pids', 'deterministic-dirs'],
      ['time', 'num-cpus'],
      ['random', 'proc-pids'],
    ]),
  );
  const orders = [
    BUILT_IN,
    [...BUILT_IN].reverse(),
    ...[1, 2, 3, 4].map((seed) => shuffled(BUILT_IN, seed)),
  ];
  for (const given of orders) {
    const supervisor = await Supervisor.load({ modules: given });
    const chain = supervisor.modules.map(({ name }) => name);
    expect(new Set(chain).size).toBe(BUILT_IN.length);
    for (const [first, then] of constraints) {
      expect(chain.indexOf(first), `${first} before ${then} in ${chain.join(', ')}`).toBeLessThan(
        chain.indexOf(then),
      );
    }
    await supervisor.close();
  }
});
