import { policySchema } from '@sandlock/policy';
import { Sandbox } from 'sandlock';
import { formatOptions, type OptionSpec, parseArgs, UsageError } from './args.js';
import { draftOf, POLICY_OPTIONS, PROFILE_OPTION } from './policy-options.js';
import { type Reporter, reportError } from './report.js';

const OWN_OPTIONS: OptionSpec[] = [
  {
    long: 'schema',
    value: '[FORM]',
    help: "print the JSON Schema of 'profile's (TOML) or of the JSON 'policy' (the default)",
  },
  PROFILE_OPTION,
  { long: 'json-errors', help: 'print errors as JSON lines' },
  { long: 'help', short: 'h', help: 'show this help' },
];

export const POLICY_HELP = `Usage: sandlock policy [-p PROFILE] [RUN OPTIONS]
       sandlock policy --schema [profile|policy]

Prints, as JSON, the policy 'sandlock run' would enforce with these options
(the form Sandbox.fromPolicy takes), after checking it. With --schema, prints
the JSON Schema of TOML profiles (for editors) or of that JSON form.
Exit status: 0, or 125 when the options or the policy are wrong.

Options:
${formatOptions(OWN_OPTIONS)}
  (and every policy option of 'sandlock run --help')

Examples:
  sandlock policy -p build -m 1G
  sandlock policy --schema profile > sandlock-profile.schema.json`;

/** `--schema` with no FORM after it (last, or before another option) is `--schema=policy`. */
function withSchemaForm(argv: readonly string[]): string[] {
  return argv.map((arg, i) =>
    arg === '--schema' && (argv[i + 1] === undefined || argv[i + 1]!.startsWith('-'))
      ? '--schema=policy'
      : arg,
  );
}

/** `sandlock policy`: returns the exit code. */
export async function policyCommand(argv: readonly string[]): Promise<number> {
  const reporter: Reporter = { json: argv.includes('--json-errors'), statusFd: null };
  try {
    const parsed = parseArgs(
      withSchemaForm(argv),
      [...POLICY_OPTIONS, ...OWN_OPTIONS],
      'sandlock policy',
    );
    if (parsed.options.has('help')) {
      process.stdout.write(`${POLICY_HELP}\n`);
      return 0;
    }
    if (parsed.rest.length > 0) {
      throw new UsageError(`sandlock policy: unexpected argument '${parsed.rest[0]}'`);
    }
    const schema = parsed.options.get('schema')?.at(-1);
    if (schema !== undefined) {
      if (schema !== 'profile' && schema !== 'policy') {
        throw new UsageError(
          `sandlock policy: --schema expects 'profile' or 'policy', got '${schema}'`,
        );
      }
      process.stdout.write(`${JSON.stringify(policySchema(schema), null, 2)}\n`);
      return 0;
    }
    const sandbox = Sandbox.fromDraft(draftOf(parsed, 'sandlock policy'));
    process.stdout.write(`${JSON.stringify(sandbox.policy, null, 2)}\n`);
    return 0;
  } catch (error) {
    return reportError(reporter, error);
  }
}
