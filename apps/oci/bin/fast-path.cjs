'use strict';
// `delete --force ID` of a container that has no state directory: what the
// shim asks after every `delete` (containerd's runc shim, `ctr run --rm`).
// The runtime answers it with success and nothing else (deleteCommand in
// src/commands.ts); answered here, it spares a call the bundle's loading.
// Any other form of the command line goes to the bundle.
const { existsSync } = require('node:fs');
const { join } = require('node:path');

/** The runtime's default --root (DEFAULT_ROOT of src/state.ts). */
const DEFAULT_ROOT = '/run/sandlock-oci';
const GLOBAL_VALUES = new Set(['--root', '--log', '--log-format']);
const GLOBAL_SWITCHES = new Set(['--systemd-cgroup']);
/** A container ID as src/state.ts (badContainerId) accepts it. */
const CONTAINER_ID = /^[A-Za-z0-9_+\-.]{1,1024}$/;

/** Whether `argv` is `[GLOBALS] delete --force ID` of a container with no state directory. */
exports.deletedAlready = function deletedAlready(argv) {
  let root = DEFAULT_ROOT;
  let index = 0;
  while (index < argv.length && argv[index].startsWith('-')) {
    const option = argv[index];
    if (GLOBAL_VALUES.has(option) && index + 1 < argv.length) {
      if (option === '--root') root = argv[index + 1];
      if (option === '--log-format' && !['json', 'text'].includes(argv[index + 1])) return false;
      index += 2;
    } else if (GLOBAL_SWITCHES.has(option)) index++;
    else return false;
  }
  const rest = argv.slice(index);
  if (rest.length !== 3 || rest[0] !== 'delete') return false;
  if (rest[1] !== '--force' && rest[1] !== '-f') return false;
  const id = rest[2];
  if (!CONTAINER_ID.test(id) || id === '.' || id === '..' || root === '') return false;
  return !existsSync(join(root, id));
};
