#!/usr/bin/env node
'use strict';
// The bundled runtime (dist/main.cjs). containerd's shim runs it once per
// call (create, start, kill, delete...); `create` leaves one copy running per
// container, the container's supervisor.
require('../dist/main.cjs');
