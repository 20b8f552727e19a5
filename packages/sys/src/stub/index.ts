// The exec stub: its machine code, the ELF around it and the launch script it
// runs (code.ts, elf.ts, script.ts), and the launcher built on them
// (executable.ts, launch.ts, steps.ts), so that the package index's
// `export * from './stub/index.js'` covers both.

export { STUB_CODE } from './code.js';
export {
  buildStubElf,
  CODE_OFFSET,
  CODE_VADDR,
  SCRIPT_BASE,
  SCRIPT_CAPACITY,
  SEGMENT_ALIGN,
} from './elf.js';
export { resetStubExecutable, type StubExecutable, stubExecutable } from './executable.js';
export * from './launch.js';
export {
  BROKER_ARG,
  BROKER_MAX_FDS,
  BROKER_PATCH,
  BROKER_REQUEST,
  BROKER_REQUEST_MAX,
  BROKER_RETURNS_FD,
  DEFAULT_MAX_STEPS,
  decodeStubFailure,
  SCRIPT_HEADER_SIZE,
  SCRIPT_MAGIC,
  SCRIPT_STEP_SIZE,
  type ScriptArg,
  ScriptEncoder,
  type ScriptEncoderOptions,
  type ScriptStep,
  STEP_FATAL_ON_ERROR,
  STEP_FATAL_UNLESS_EQUAL,
  STEP_FORK_ZYGOTE,
  STUB_EXIT_STATUS,
  STUB_FAILURE_SIZE,
  type StubFailure,
  ZYGOTE_PARAM,
  ZYGOTE_PARAMS_SIZE,
} from './script.js';
export { type LaunchStep, personalityWithoutRandomization, REAPER_SIGNAL } from './steps.js';
export { type Joined, type JoinOptions, joinSandbox } from './zygote.js';
