// Copy-on-write layers: the commit of 1000 small files (each written beside
// its place, synced and renamed over), the change list of the same layer,
// and, for scale, writing the same files directly without syncing.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Layer } from '@sandlock/cow';
import { summarize } from './stats.mjs';

const FILES = 1000;
const RUNS = 10;
const content = Buffer.alloc(200, 'x');

function fill(dir) {
  mkdirSync(join(dir, 'tree'), { recursive: true });
  for (let index = 0; index < FILES; index++) {
    if (index % 100 === 0) mkdirSync(join(dir, 'tree', `d${index / 100}`));
    writeFileSync(join(dir, 'tree', `d${Math.floor(index / 100)}`, `f${index}`), content);
  }
}

function time(body) {
  const start = process.hrtime.bigint();
  body();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

export async function benchCow() {
  const samples = {
    'changes() of 1000 new files': [],
    'commit() of 1000 new files': [],
    'the same files written directly (no fsync)': [],
  };
  for (let run = 0; run < RUNS; run++) {
    const base = mkdtempSync(join(tmpdir(), 'sandlock-bench-cow-'));
    try {
      const lower = join(base, 'lower');
      mkdirSync(lower);
      const layer = Layer.create({ lower, storage: join(base, 'store') });
      fill(layer.upper);
      samples['changes() of 1000 new files'].push(time(() => layer.changes()));
      samples['commit() of 1000 new files'].push(time(() => layer.commit()));
      const direct = join(base, 'direct');
      mkdirSync(direct);
      samples['the same files written directly (no fsync)'].push(time(() => fill(direct)));
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  }
  const result = summarize(samples);
  return {
    title: `Copy-on-write commit of ${FILES} files of ${content.length} bytes (${tmpdir()})`,
    result,
    ratios: {
      'commit per file (ms)': result['commit() of 1000 new files'].median / FILES,
      'commit / direct writes':
        result['commit() of 1000 new files'].median /
        result['the same files written directly (no fsync)'].median,
    },
  };
}
