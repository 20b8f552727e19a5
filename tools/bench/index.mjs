#!/usr/bin/env node
// Sandlock benchmarks. Build first (`pnpm build`), then `pnpm bench`.
// Prints a Markdown table per benchmark; docs/benchmarks.md records them.
import { cpus, release } from 'node:os';
import { benchLaunch } from './launch.mjs';

const benches = { launch: benchLaunch };
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
  for (const [label, value] of Object.entries(ratios))
    console.log(`- ${label}: **${value.toFixed(2)}×**`);
  console.log('');
}
