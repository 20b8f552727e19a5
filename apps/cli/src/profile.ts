import { readFileSync } from 'node:fs';
import { badProfileName, listProfiles, profileDir, profilePath } from '@sandlock/policy';
import { EXIT } from './report.js';

export const PROFILE_HELP = `Usage: sandlock profile list
       sandlock profile show NAME
       sandlock profile path NAME

Profiles are TOML files in $XDG_CONFIG_HOME/sandlock/profiles (by default
~/.config/sandlock/profiles), used with 'sandlock run -p NAME'. 'list' names
them, 'show' prints one, 'path' prints where NAME is (or would be) read from.
Sections and keys: docs/policy.md; schema: 'sandlock policy --schema profile'.
Exit status: 0; 1 when 'show' finds no such profile, or the profile
directory or file cannot be read; 125 for a usage error.

Examples:
  sandlock profile list
  $EDITOR "$(sandlock profile path build)"`;

/** A file system error as the user needs it: the path and the reason. */
function unreadable(error: unknown, what: string): number {
  // "EACCES: permission denied, scandir '…'": the path is in `what` already.
  const reason = (error as Error).message.split(',')[0];
  process.stderr.write(`sandlock profile: cannot read ${what}: ${reason}\n`);
  return 1;
}

function fail(message: string): number {
  process.stderr.write(`sandlock profile: ${message}\n`);
  return EXIT.usage;
}

/** `sandlock profile`: returns the exit code. */
export async function profileCommand(argv: readonly string[]): Promise<number> {
  const [action, name, ...extra] = argv;
  if (action === '--help' || action === '-h' || action === undefined) {
    (action === undefined ? process.stderr : process.stdout).write(`${PROFILE_HELP}\n`);
    return action === undefined ? EXIT.usage : 0;
  }
  if (action === 'list') {
    if (name !== undefined) return fail(`list takes no argument, got '${name}'`);
    let names: string[];
    try {
      names = listProfiles();
    } catch (error) {
      return unreadable(error, `the profile directory ${profileDir()}`);
    }
    if (names.length === 0) process.stderr.write(`no profiles in ${profileDir()}\n`);
    for (const profile of names) process.stdout.write(`${profile}\n`);
    return 0;
  }
  if (action !== 'show' && action !== 'path') {
    return fail(`unknown action '${action}' (list, show NAME, path NAME)`);
  }
  if (name === undefined) return fail(`${action} needs a profile NAME`);
  if (extra.length > 0) return fail(`unexpected argument '${extra[0]}'`);
  const bad = badProfileName(name);
  if (bad !== null) return fail(bad);
  const file = profilePath(name);
  if (action === 'path') {
    process.stdout.write(`${file}\n`);
    return 0;
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return unreadable(error, file);
    process.stderr.write(`sandlock profile: no profile '${name}' in ${profileDir()}\n`);
    return 1;
  }
  process.stdout.write(text);
  return 0;
}
