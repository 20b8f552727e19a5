#!/usr/bin/env node
// Sandlock benchmarks. Build first (`pnpm build`), then `pnpm bench`.
// Prints a Markdown table per benchmark; docs/benchmarks.md records them.
import { cpus, release } from 'node:os';
import { benchCli } from './cli.mjs';
import { benchLaunch } from './launch.mjs';
import { benchLibrary } from './library.mjs';
import { benchPython } from './python.mjs';

const benches = { launch: benchLaunch, library: benchLibrary, cli: benchCli, python: benchPython };
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
  const { title, result, ratios } = await bench();
  console.log(`## ${title}\n`);
  console.log('| case | median ms | p90 ms | runs |\n|---|---|---|---|');
  for (const [label, row] of Object.entries(result)) {
    console.log(`| ${label} | ${row.median.toFixed(3)} | ${row.p90.toFixed(3)} | ${row.runs} |`);
  }
  console.log('');
  for (const [label, value] of Object.entries(ratios)) {
    const unit = label.endsWith('(ms)') ? ' ms' : '×';
    console.log(`- ${label}: **${value.toFixed(2)}${unit}**`);
  }
  console.log('');
}
