// A process that owns or commits a layer, for the tests of what happens when
// such a process dies or two of them commit at once.
//   commit-killed LAYER N        commit LAYER, SIGKILLed right after step N
//   commit-first LAYER MARKS     commit LAYER, holding the lock until another process waits for it
//   commit-second LAYER MARKS    commit LAYER once the first started; note what it saw
//   create-and-die LOWER STORE   make a layer with one file in it, print its directory, exit
//   bounded-and-die LOWER STORE  the same with maxDisk (a tmpfs upper where it may mount); prints its directory and bound
//   bounded-and-keep LOWER STORE a layer with maxDisk holding a directory, a file, a hard link and a symlink, kept

import {
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { Layer } from '../../src/index.js';
import { setStepHook } from '../../src/layer/commit.js';

const [mode, first, second] = process.argv.slice(2) as [string, string, string];
const pause = new Int32Array(new SharedArrayBuffer(4));

/** Waits (a generous deadline that only catches hangs) until `ready` says so. */
function waitFor(ready: () => boolean, what: string): void {
  for (let tries = 0; tries < 12_000; tries++) {
    if (ready()) return;
    Atomics.wait(pause, 0, 0, 5);
  }
  throw new Error(`timed out waiting for ${what}`);
}

switch (mode) {
  case 'commit-killed': {
    const layer = Layer.open(first);
    setStepHook((index) => {
      if (index === Number(second)) process.kill(process.pid, 'SIGKILL');
    });
    layer.commit();
    break;
  }
  case 'commit-first': {
    const layer = Layer.open(first);
    const meta = layer.metadata;
    const lockInode = () => {
      try {
        return lstatSync(join(layer.store, `.lock-${meta.device}-${meta.inode}`)).ino;
      } catch {
        return -1;
      }
    };
    let done = 0;
    setStepHook((index) => {
      done = index + 1;
      writeFileSync(join(second, 'first-steps'), String(done));
      if (index !== 0) return;
      writeFileSync(join(second, 'first-started'), '');
      // /proc/locks lists a process waiting for a flock as "N: -> FLOCK …
      // MAJ:MIN:INODE": hold the lock until the other commit waits on it.
      waitFor(
        () =>
          readFileSync('/proc/locks', 'utf8')
            .split('\n')
            .some((line) => line.includes('->') && line.endsWith(`:${lockInode()} 0 EOF`)),
        'the second commit to wait for the lock',
      );
    });
    layer.commit();
    writeFileSync(join(second, 'first-total'), String(done));
    break;
  }
  case 'commit-second': {
    const layer = Layer.open(first);
    waitFor(() => existsSync(join(second, 'first-started')), 'the first commit');
    setStepHook((index) => {
      if (index !== 0) return;
      // What the first commit had done when this one made its first step.
      writeFileSync(join(second, 'second-saw'), readFileSync(join(second, 'first-steps')));
    });
    layer.commit();
    break;
  }
  case 'create-and-die': {
    const layer = Layer.create({ lower: first, storage: second });
    writeFileSync(join(layer.upper, 'orphan.txt'), 'orphan\n');
    layer.recordDelete('README');
    process.stdout.write(layer.dir);
    // Gone without finishing the layer, as a host killed outright.
    process.exit(0);
    break;
  }
  case 'bounded-and-die': {
    const layer = Layer.create({ lower: first, storage: second, maxDisk: 1024 * 1024 });
    writeFileSync(join(layer.upper, 'orphan.txt'), 'orphan\n');
    process.stdout.write(`${layer.dir} ${layer.diskBound}`);
    process.exit(0);
    break;
  }
  case 'bounded-and-keep': {
    const layer = Layer.create({ lower: first, storage: second, maxDisk: 1024 * 1024 });
    mkdirSync(join(layer.upper, 'dir'), { mode: 0o750 });
    writeFileSync(join(layer.upper, 'dir/kept.txt'), 'kept\n', { mode: 0o640 });
    linkSync(join(layer.upper, 'dir/kept.txt'), join(layer.upper, 'link.txt'));
    symlinkSync('dir/kept.txt', join(layer.upper, 'symlink'));
    layer.recordDelete('README');
    const bound = layer.diskBound;
    process.stdout.write(`${layer.keep()} ${bound}`);
    break;
  }
  default:
    throw new Error(`unknown mode ${mode}`);
}
