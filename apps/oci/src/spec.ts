// The parts of an OCI runtime-spec config.json (config.md, config-linux.md)
// this runtime reads. Every other key is looked at by mapping.ts, which
// refuses or reports what it cannot honour.

export interface OciMount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

export interface OciRlimit {
  type: string;
  soft: number;
  hard: number;
}

export interface OciUser {
  uid: number;
  gid: number;
  umask?: number;
  additionalGids?: number[];
  username?: string;
}

export interface OciProcess {
  terminal?: boolean;
  consoleSize?: { height: number; width: number };
  user?: OciUser;
  args?: string[];
  commandLine?: string;
  env?: string[];
  cwd?: string;
  capabilities?: Partial<
    Record<'bounding' | 'effective' | 'inheritable' | 'permitted' | 'ambient', string[]>
  >;
  rlimits?: OciRlimit[];
  noNewPrivileges?: boolean;
  apparmorProfile?: string;
  oomScoreAdj?: number;
  selinuxLabel?: string;
  [key: string]: unknown;
}

export interface OciSeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: string;
}

export interface OciSeccompSyscall {
  names: string[];
  action: string;
  errnoRet?: number;
  args?: OciSeccompArg[];
}

export interface OciSeccomp {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  flags?: string[];
  listenerPath?: string;
  listenerMetadata?: string;
  syscalls?: OciSeccompSyscall[];
}

export interface OciResources {
  memory?: { limit?: number; reservation?: number; swap?: number; [key: string]: unknown };
  cpu?: {
    shares?: number;
    quota?: number;
    period?: number;
    cpus?: string;
    mems?: string;
    [key: string]: unknown;
  };
  pids?: { limit?: number };
  devices?: { allow: boolean; type?: string; major?: number; minor?: number; access?: string }[];
  [key: string]: unknown;
}

export interface OciLinux {
  namespaces?: { type: string; path?: string }[];
  resources?: OciResources;
  seccomp?: OciSeccomp;
  [key: string]: unknown;
}

export interface OciHook {
  path: string;
  args?: string[];
  env?: string[];
  timeout?: number;
}

export interface OciConfig {
  ociVersion: string;
  root?: { path: string; readonly?: boolean };
  mounts?: OciMount[];
  process?: OciProcess;
  hostname?: string;
  domainname?: string;
  hooks?: Partial<Record<string, OciHook[]>>;
  annotations?: Record<string, string>;
  linux?: OciLinux;
  [key: string]: unknown;
}
