import { readFileSync, readSync, statSync, writeSync } from 'node:fs';
import {
  close,
  F_GETFL,
  F_SETFL,
  fcntl,
  hostArch,
  openFlags,
  openPty,
  type Pty,
} from '@sandlock/sys';
import { afterEach, describe, expect, it } from 'vitest';
import { systemBuilder } from './helpers.js';

// SpawnOptions.terminal: stdin's terminal becomes the program's controlling terminal.

/** Only a hang reaches it. */
const DEADLINE_MS = 60_000;

const opened: Pty[] = [];
afterEach(() => {
  for (const pty of opened.splice(0)) {
    close(pty.master);
    close(pty.slave);
  }
});

function pty(): Pty {
  const made = openPty();
  opened.push(made);
  const { master } = made;
  fcntl(master, F_SETFL, fcntl(master, F_GETFL) | openFlags(hostArch()).O_NONBLOCK);
  return made;
}

/** Reads the master until `done` holds for what came, or every slave is closed (EIO). */
async function readTerminal(master: number, done: (text: string) => boolean): Promise<string> {
  const deadline = Date.now() + DEADLINE_MS;
  const chunk = Buffer.alloc(4096);
  let text = '';
  while (!done(text)) {
    try {
      text += chunk.subarray(0, readSync(master, chunk)).toString();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EIO') break;
      if (code !== 'EAGAIN') throw error;
      if (Date.now() > deadline) throw new Error(`the terminal said only ${JSON.stringify(text)}`);
      await new Promise((resume) => setTimeout(resume, 50));
    }
  }
  return text;
}

/** proc(5) /proc/PID/stat: the session id (6th field) and tty_nr (7th). */
function sessionOf(pid: number): { session: number; tty: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { session: Number(fields[3]), tty: Number(fields[4]) };
}

describe('SpawnOptions.terminal', () => {
  const sandbox = systemBuilder().fsWrite('/dev/tty').build();

  it('makes stdin the controlling terminal of a session the program leads: /dev/tty opens, ^C ends it with SIGINT', async () => {
    const { master, slave, name } = pty();
    const program = await sandbox.spawn(
      ['sh', '-c', 'echo "pid:$$"; echo via-dev-tty > /dev/tty; exec sleep 1000'],
      { stdio: [slave, slave, slave], terminal: true },
    );
    const said = await readTerminal(master, (text) => text.includes('via-dev-tty'));
    expect(said).toMatch(/^pid:\d+\r\nvia-dev-tty\r\n$/);
    const pid = Number(/pid:(\d+)/.exec(said)![1]);
    expect(sessionOf(pid)).toEqual({ session: pid, tty: statSync(name).rdev });
    writeSync(master, '\x03');
    const status = await program.wait();
    expect(status.signal).toBe('SIGINT');
  });

  it('without it, the program has no controlling terminal: /dev/tty gives ENXIO', async () => {
    const { master, slave } = pty();
    const program = await sandbox.spawn(
      ['sh', '-c', 'echo via-dev-tty > /dev/tty || echo no-tty'],
      { stdio: [slave, slave, slave] },
    );
    const said = await readTerminal(master, (text) => text.includes('no-tty'));
    expect(said).toContain('No such device or address');
    expect((await program.wait()).exitCode).toBe(0);
  });

  it('refuses a stdin that is no terminal, naming the step', async () => {
    await expect(sandbox.run(['true'], { terminal: true })).rejects.toThrow(/TIOCSCTTY/);
  });
});
