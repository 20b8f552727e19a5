// A layer driven the way the copy-on-write handlers drive it (copy-up, then
// the change in the upper, deletions in the log), with the same operations
// done on a plain copy of the directory to compare against.

import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import type { Layer } from '../../src/index.js';

export interface Entry {
  kind: string;
  mode: number;
  content?: string;
  /** Paths sharing this entry's inode, for files with several links. */
  links?: string[];
}

/** Everything beneath `root`: kind, mode, content or target, link groups. */
export function snapshot(root: string): Record<string, Entry> {
  const out: Record<string, Entry> = {};
  const inodes = new Map<number, string[]>();
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const path = rel === '' ? name : `${rel}/${name}`;
      const full = join(root, path);
      const stat = lstatSync(full);
      const mode = stat.mode & 0o7777;
      if (stat.isDirectory()) {
        out[path] = { kind: 'dir', mode };
        walk(path);
      } else if (stat.isSymbolicLink()) {
        out[path] = { kind: 'symlink', mode: 0, content: readlinkSync(full) };
      } else if (stat.isFIFO()) {
        out[path] = { kind: 'fifo', mode };
      } else {
        out[path] = { kind: 'file', mode, content: readFileSync(full, 'utf8') };
        if (stat.nlink > 1) inodes.set(stat.ino, [...(inodes.get(stat.ino) ?? []), path]);
      }
    }
  };
  walk('');
  for (const paths of inodes.values()) {
    for (const path of paths) out[path]!.links = paths;
  }
  return out;
}

export function mkfifo(path: string, mode = 0o644): void {
  execFileSync('mkfifo', ['-m', mode.toString(8), path]);
}

/** Copies the lower's ancestors of `rel` into the upper (directories with their modes). */
function copyUpParents(layer: Layer, rel: string): void {
  const parts = rel.split('/').slice(0, -1);
  let at = '';
  for (const part of parts) {
    at = at === '' ? part : `${at}/${part}`;
    const upper = join(layer.upper, at);
    try {
      lstatSync(upper);
      continue;
    } catch {}
    mkdirSync(upper);
    try {
      chmodSync(upper, statSync(join(layer.lower, at)).mode & 0o7777);
    } catch {}
  }
}

function inUpper(layer: Layer, rel: string): boolean {
  try {
    lstatSync(join(layer.upper, rel));
    return true;
  } catch {
    return false;
  }
}

function visibleInLower(layer: Layer, rel: string): boolean {
  if (layer.hidden(rel)) return false;
  try {
    lstatSync(join(layer.lower, rel));
    return true;
  } catch {
    return false;
  }
}

/** Copies a lower file up (content, mode) if the upper lacks it. */
function copyUp(layer: Layer, rel: string): void {
  copyUpParents(layer, rel);
  if (inUpper(layer, rel) || !visibleInLower(layer, rel)) return;
  const from = join(layer.lower, rel);
  const to = join(layer.upper, rel);
  if (lstatSync(from).isDirectory()) {
    mkdirSync(to);
    chmodSync(to, statSync(from).mode & 0o7777);
  } else {
    copyFileSync(from, to);
    chmodSync(to, statSync(from).mode & 0o7777);
  }
}

/** The same operations on a plain directory (`plain`) and through a layer. */
export class Twin {
  constructor(
    readonly layer: Layer,
    readonly plain: string,
  ) {}

  write(rel: string, content: string): void {
    writeFileSync(join(this.plain, rel), content);
    copyUp(this.layer, rel);
    writeFileSync(join(this.layer.upper, rel), content);
  }

  chmod(rel: string, mode: number): void {
    chmodSync(join(this.plain, rel), mode);
    copyUp(this.layer, rel);
    chmodSync(join(this.layer.upper, rel), mode);
  }

  mkdir(rel: string, mode = 0o755): void {
    mkdirSync(join(this.plain, rel), { mode });
    chmodSync(join(this.plain, rel), mode);
    copyUpParents(this.layer, rel);
    mkdirSync(join(this.layer.upper, rel));
    chmodSync(join(this.layer.upper, rel), mode);
    if (this.layer.hidden(rel) || lstatExists(join(this.layer.lower, rel))) {
      this.layer.recordOpaque(rel);
    }
  }

  remove(rel: string): void {
    rmSync(join(this.plain, rel), { recursive: true });
    rmSync(join(this.layer.upper, rel), { recursive: true, force: true });
    this.layer.recordDelete(rel);
  }

  symlink(target: string, rel: string): void {
    symlinkSync(target, join(this.plain, rel));
    copyUpParents(this.layer, rel);
    symlinkSync(target, join(this.layer.upper, rel));
  }

  fifo(rel: string, mode: number): void {
    mkfifo(join(this.plain, rel), mode);
    copyUpParents(this.layer, rel);
    mkfifo(join(this.layer.upper, rel), mode);
  }

  link(from: string, to: string): void {
    linkSync(join(this.plain, from), join(this.plain, to));
    copyUp(this.layer, from);
    copyUpParents(this.layer, to);
    linkSync(join(this.layer.upper, from), join(this.layer.upper, to));
  }

  /** A directory rename: the whole merged tree copied up at the new name, opaque there. */
  renameDir(from: string, to: string): void {
    renameSync(join(this.plain, from), join(this.plain, to));
    copyUpParents(this.layer, to);
    const target = join(this.layer.upper, to);
    mkdirSync(target);
    if (visibleInLower(this.layer, from)) copyTree(join(this.layer.lower, from), target);
    if (inUpper(this.layer, from)) {
      copyTree(join(this.layer.upper, from), target);
      rmSync(join(this.layer.upper, from), { recursive: true });
    }
    this.layer.recordDelete(from);
    this.layer.recordOpaque(to);
  }

  renameFile(from: string, to: string): void {
    renameSync(join(this.plain, from), join(this.plain, to));
    copyUp(this.layer, from);
    copyUpParents(this.layer, to);
    renameSync(join(this.layer.upper, from), join(this.layer.upper, to));
    this.layer.recordDelete(from);
  }
}

function lstatExists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** A small tree: files, a nested directory, a symlink, a FIFO, an executable. */
export function makeTree(root: string): void {
  mkdirSync(join(root, 'src/deep'), { recursive: true });
  writeFileSync(join(root, 'README'), 'hello\n');
  writeFileSync(join(root, 'src/main.c'), 'int main(void) { return 0; }\n');
  writeFileSync(join(root, 'src/deep/data.txt'), 'one\ntwo\nthree\n');
  writeFileSync(join(root, 'run.sh'), '#!/bin/sh\necho run\n');
  chmodSync(join(root, 'run.sh'), 0o755);
  symlinkSync('src/main.c', join(root, 'main'));
  mkfifo(join(root, 'pipe'));
  mkdirSync(join(root, 'empty'));
  writeFileSync(join(root, 'old.txt'), 'old\n');
}

export function copyTree(from: string, to: string): void {
  execFileSync('cp', ['-a', `${from}/.`, to]);
}

export { dirname };
