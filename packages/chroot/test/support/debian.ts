// A Debian bookworm root file system for the chroot tests, made by
// debootstrap (minbase, with python3-minimal) from the Debian mirror, kept
// under the system's temporary directory for the day: reruns take it as it
// is, the next day's run makes a new one and then removes the older (or
// takes the older when it cannot make one).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const MIRROR = 'http://deb.debian.org/debian';
const PREFIX = 'sandlock-debian-bookworm-';
/** debootstrap of minbase took about two minutes here; past this the test is skipped, not hung. */
const BUILD_MS = 270_000;

function reachable(url: string): boolean {
  const probe = spawnSync(
    process.execPath,
    [
      '-e',
      'fetch(process.argv[1], { method: "HEAD", signal: AbortSignal.timeout(10000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))',
      url,
    ],
    { stdio: 'ignore', timeout: 20_000 },
  );
  return probe.status === 0;
}

function hasDebootstrap(): boolean {
  const found = () => spawnSync('debootstrap', ['--version'], { stdio: 'ignore' }).status === 0;
  if (found()) return true;
  spawnSync('apt-get', ['install', '-y', '-q', 'debootstrap'], { stdio: 'ignore' });
  return found();
}

/** The root's directory, or why there is none (printed by the skipping tests). */
export function debianRoot(): { dir: string } | { missing: string } {
  const date = new Date().toISOString().slice(0, 10);
  const dir = join(tmpdir(), `${PREFIX}${date}`);
  if (existsSync(join(dir, 'usr/bin/python3'))) return { dir };
  // An earlier day's root: kept until today's is made, and taken when it cannot be.
  const older = readdirSync(tmpdir())
    .filter((name) => /^\d{4}-\d{2}-\d{2}$/.test(name.slice(PREFIX.length)))
    .filter(
      (name) => name.startsWith(PREFIX) && existsSync(join(tmpdir(), name, 'usr/bin/python3')),
    )
    .sort()
    .map((name) => join(tmpdir(), name));
  const made = makeRoot(dir);
  if ('missing' in made) return older.length > 0 ? { dir: older.at(-1)! } : made;
  for (const old of older) rmSync(old, { recursive: true, force: true });
  return made;
}

function makeRoot(dir: string): { dir: string } | { missing: string } {
  if (process.getuid?.() !== 0) return { missing: 'debootstrap needs root' };
  if (!hasDebootstrap())
    return { missing: 'debootstrap is not installed and apt-get could not install it' };
  if (!reachable(`${MIRROR}/dists/bookworm/Release`)) {
    return { missing: `the Debian mirror ${MIRROR} is not reachable` };
  }
  const building = `${dir}.tmp-${process.pid}`;
  const made = spawnSync(
    'debootstrap',
    ['--variant=minbase', '--include=python3-minimal', 'bookworm', building, MIRROR],
    { encoding: 'utf8', timeout: BUILD_MS },
  );
  if (made.status !== 0) {
    rmSync(building, { recursive: true, force: true });
    const last = `${made.stdout ?? ''}${made.stderr ?? ''}`.trim().split('\n').at(-1);
    return { missing: `debootstrap failed (${made.error?.message ?? last})` };
  }
  renameSync(building, dir);
  return { dir };
}
