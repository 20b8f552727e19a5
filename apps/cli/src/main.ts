import { CHECK_HELP, checkCommand } from './check.js';
import { COW_HELP, cowCommand } from './cow.js';
import { POLICY_HELP, policyCommand } from './policy.js';
import { PROFILE_HELP, profileCommand } from './profile.js';
import { EXIT } from './report.js';
import { RUN_HELP, runCommand } from './run.js';
import {
  INSPECT_HELP,
  inspectCommand,
  KILL_HELP,
  killCommand,
  PS_HELP,
  psCommand,
} from './sandboxes.js';

declare const SANDLOCK_VERSION: string;

const HELP = `Usage: sandlock <command> [options]

Commands:
  run      run a command in a sandbox
  check    list the kernel features Sandlock uses and whether they are here
  policy   print the policy some options describe, or its JSON Schema
  profile  list, show or locate TOML profiles (sandlock run -p NAME)
  ps       list your running sandboxes
  inspect  print the policy of a running sandbox
  kill     send a signal to every process of a running sandbox
  cow      list, show, commit or abort kept copy-on-write layers (--workdir)

Options:
  -h, --help     show help (also: sandlock <command> --help)
  -V, --version  show the version

Exit status: 125 for a usage error of any command (sandlock run passes the
command's own status through otherwise; see sandlock run --help).

Examples:
  sandlock run --system -- echo hello
  sandlock run -p build -- make
  sandlock run --name web --system -- python3 -m http.server & sandlock ps
  sandlock check`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'run':
      return runCommand(rest);
    case 'check':
      return checkCommand(rest);
    case 'policy':
      return policyCommand(rest);
    case 'profile':
      return profileCommand(rest);
    case 'ps':
      return psCommand(rest);
    case 'inspect':
      return inspectCommand(rest);
    case 'kill':
      return killCommand(rest);
    case 'cow':
      return cowCommand(rest);
    case '-V':
    case '--version':
      process.stdout.write(`sandlock ${SANDLOCK_VERSION}\n`);
      return 0;
    case undefined:
    case '-h':
    case '--help':
    case 'help': {
      const topic = rest[0];
      const topics: Record<string, string> = {
        run: RUN_HELP,
        check: CHECK_HELP,
        policy: POLICY_HELP,
        profile: PROFILE_HELP,
        ps: PS_HELP,
        inspect: INSPECT_HELP,
        kill: KILL_HELP,
        cow: COW_HELP,
      };
      const text = (topic !== undefined ? topics[topic] : undefined) ?? HELP;
      (command === undefined ? process.stderr : process.stdout).write(`${text}\n`);
      return command === undefined ? EXIT.usage : 0;
    }
    default:
      process.stderr.write(
        `sandlock: unknown command '${command}' (run, check, policy, profile, ps, inspect, kill, cow; see sandlock --help)\n`,
      );
      return EXIT.usage;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(
      `sandlock: internal error: ${error instanceof Error ? error.stack : String(error)}\n`,
    );
    process.exitCode = 125;
  },
);
