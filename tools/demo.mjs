#!/usr/bin/env node
// The README's first command ends here: a real command run through the
// sandlock CLI, showing what it may and may not touch.
import { spawnSync } from 'node:child_process';
import { homedir } from 'node:os';

const cli = new URL('../apps/cli/bin/sandlock.cjs', import.meta.url).pathname;
const script = [
  'echo "hello from a sandbox: $(id -un) in $(pwd)"',
  `ls ${homedir()} >/dev/null 2>&1 && echo "home is readable" || echo "home is out of reach"`,
  '(echo test > /etc/sandlock-demo) 2>/dev/null && echo "/etc is writable" || echo "/etc is read-only, even for root"',
  'cat /etc/shadow >/dev/null 2>&1 && echo "/etc/shadow is readable" || echo "/etc/shadow is out of reach"',
  'kill -0 1 2>/dev/null && echo "init is reachable" || echo "processes outside are out of reach"',
].join('; ');
const args = ['run', '--system', '-e', script];
console.log(
  `$ sandlock ${args.map((arg) => (/[\s;$'"|&>]/.test(arg) ? `'${arg}'` : arg)).join(' ')}`,
);
const result = spawnSync(process.execPath, [cli, ...args], { stdio: 'inherit' });
process.exit(result.status ?? 1);
