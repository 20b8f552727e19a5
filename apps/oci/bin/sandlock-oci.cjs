#!/usr/bin/env node
'use strict';
// The bundled runtime (dist/main.cjs), through V8's code cache (code-cache.cjs).
// containerd's shim runs it once per call (create, start, kill, delete...);
// `create` leaves a supervisor running per container (supervisor.cjs).
const { deletedAlready } = require('./fast-path.cjs');

if (deletedAlready(process.argv.slice(2))) process.exitCode = 0;
else require('./code-cache.cjs').runBundle('main');
