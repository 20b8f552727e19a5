import { appendFileSync } from 'node:fs';

export type LogFormat = 'json' | 'text';

/**
 * Where the runtime reports: containerd's shim passes `--log <bundle>/log.json
 * --log-format json` and shows the last `{"level":"error","msg":…}` line when
 * a call fails. Without --log the lines go to stderr.
 */
export class RuntimeLog {
  constructor(
    readonly file: string | null,
    readonly format: LogFormat,
  ) {}

  error(msg: string): void {
    this.write('error', msg);
  }

  warning(msg: string): void {
    this.write('warning', msg);
  }

  private write(level: 'error' | 'warning', msg: string): void {
    const time = new Date().toISOString();
    const line =
      this.format === 'json'
        ? `${JSON.stringify({ level, msg, time })}\n`
        : `time="${time}" level=${level} msg=${JSON.stringify(msg)}\n`;
    if (this.file === null) {
      process.stderr.write(line);
      return;
    }
    try {
      appendFileSync(this.file, line);
    } catch {
      process.stderr.write(line);
    }
  }
}
