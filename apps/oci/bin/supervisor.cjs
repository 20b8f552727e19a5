'use strict';
// A container's supervisor (dist/supervisor.cjs), which `create` starts,
// through V8's code cache (code-cache.cjs).
require('./code-cache.cjs').runBundle('supervisor');
