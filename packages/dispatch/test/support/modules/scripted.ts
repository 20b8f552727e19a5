// Modules whose answers are data: options.answers maps a syscall to the
// answer to give. Several exports, so one file gives several modules.
import { type Answer, answer, type DispatchModule, defineModule } from '../../../src/index.js';

interface Options {
  answers?: Record<string, Answer>;
}

interface Policy {
  /** Names of modules to turn off. */
  off?: string[];
}

function scripted(name: string, syscalls: string[]): DispatchModule<Options, Policy> {
  let answers: Record<string, Answer> = {};
  return defineModule<Options, Policy>({
    name,
    syscalls,
    enabled: (policy) => !(policy?.off ?? []).includes(name),
    setup(options) {
      answers = options?.answers ?? {};
    },
    handlers: Object.fromEntries(
      syscalls.map((syscall) => [syscall, () => answers[syscall] ?? answer.continue()]),
    ),
  });
}

export const first = scripted('first', ['getuid', 'getgid']);
export const second = scripted('second', ['getuid', 'getgid']);
export const third = scripted('third', ['getuid', 'getgid', 'getppid']);
