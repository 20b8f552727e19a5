import { checkKernel } from 'sandlock';
import { EXIT } from './report.js';

export const CHECK_HELP = `Usage: sandlock check [--json]

Lists every kernel feature Sandlock uses, with OK or MISSING and the Linux
version that introduced it. Exits 0 when Sandlock can run here, 1 otherwise,
125 for a usage error.

Examples:
  sandlock check
  sandlock check --json | jq '.features[] | select(.ok | not)'`;

/** `sandlock check`: returns the exit code. */
export async function checkCommand(argv: readonly string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${CHECK_HELP}\n`);
    return 0;
  }
  const unknown = argv.filter((arg) => arg !== '--json');
  if (unknown.length > 0) {
    process.stderr.write(`sandlock check: unknown argument '${unknown[0]}' (only --json)\n`);
    return EXIT.usage;
  }
  const result = await checkKernel();
  if (argv.includes('--json')) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return result.ok ? 0 : 1;
  }
  const width = Math.max(...result.features.map((feature) => feature.name.length)) + 2;
  for (const feature of result.features) {
    const state = feature.ok ? 'OK     ' : feature.required ? 'MISSING' : 'missing';
    const since = feature.since === '-' ? '' : `  (Linux ${feature.since})`;
    const detail = feature.detail ? `  ${feature.detail}` : '';
    process.stdout.write(`${feature.name.padEnd(width)}${state}${since}${detail}\n`);
  }
  process.stdout.write(
    result.ok
      ? 'Sandlock can run here.\n'
      : 'Sandlock cannot enforce its default policy here (MISSING above); --best-effort runs with less.\n',
  );
  return result.ok ? 0 : 1;
}
