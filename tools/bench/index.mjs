#!/usr/bin/env node
// Sandlock benchmarks. Build first (`pnpm build`), then `pnpm bench`.
// Prints a Markdown table per benchmark; docs/benchmarks.md records them.
import { cpus, release } from 'node:os';
import { benchChroot } from './chroot.mjs';
import { benchCli } from './cli.mjs';
import { benchClock } from './clock.mjs';
import { benchConnectCost, benchStart } from './connect.mjs';
import { benchCow } from './cow.mjs';
import { benchHttp } from './http.mjs';
import { benchHttpSandbox } from './http-sandbox.mjs';
import { benchIntercept } from './intercept.mjs';
import { benchLaunch } from './launch.mjs';
import { benchLibrary } from './library.mjs';
import { benchNeighbours } from './neighbours.mjs';
import { benchConnect, benchRedis } from './network.mjs';
import { benchOci } from './oci.mjs';
import { benchPython } from './python.mjs';
import { benchRetarget } from './retarget.mjs';
import { benchThrottle } from './throttle.mjs';
import { benchWorkdir } from './workdir.mjs';
import { benchWorkdirGit } from './workdir-git.mjs';

const benches = {
  launch: benchLaunch,
  library: benchLibrary,
  cli: benchCli,
  python: benchPython,
  intercept: benchIntercept,
  clock: benchClock,
  neighbours: benchNeighbours,
  throttle: benchThrottle,
  cow: benchCow,
  redis: benchRedis,
  connect: benchConnect,
  start: benchStart,
  'connect-check': benchConnectCost,
  http: benchHttp,
  'http-sandbox': benchHttpSandbox,
  workdir: benchWorkdir,
  'workdir-git': benchWorkdirGit,
  retarget: benchRetarget,
  chroot: benchChroot,
  oci: benchOci,
};
const selected = process.argv.slice(2);
const names = selected.length ? selected : Object.keys(benches);

console.log(
  `Node ${process.version}, Linux ${release()}, ${cpus().length} CPUs (${cpus()[0]?.model})\n`,
);
for (const name of names) {
  const bench = benches[name];
  if (!bench) {
    console.error(`unknown benchmark '${name}'; known: ${Object.keys(benches).join(', ')}`);
    process.exit(2);
  }
  const { title, result, ratios, unit = 'ms', spread = false } = await bench();
  console.log(`## ${title}\n`);
  const last = spread ? `min–max ${unit}` : `p90 ${unit}`;
  console.log(`| case | median ${unit} | ${last} | runs |\n|---|---|---|---|`);
  for (const [label, row] of Object.entries(result)) {
    const tail = spread ? `${row.min.toFixed(2)}–${row.p90.toFixed(2)}` : row.p90.toFixed(3);
    console.log(`| ${label} | ${row.median.toFixed(3)} | ${tail} | ${row.runs} |`);
  }
  console.log('');
  for (const [label, value] of Object.entries(ratios)) {
    const suffix = label.match(/\((ms|µs)\)$/);
    const shown = suffix ? label.slice(0, -suffix[0].length).trimEnd() : label;
    console.log(`- ${shown}: **${value.toFixed(2)}${suffix ? ` ${suffix[1]}` : '×'}**`);
  }
  console.log('');
}
