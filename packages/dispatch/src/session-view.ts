import type { OnBehalf } from './on-behalf.js';
import type { Provision } from './provisions.js';

/** What handlers know about the sandbox a call comes from. */
export interface SessionInfo<P = unknown> {
  /** Unique within the supervisor. */
  readonly id: number;
  /** The sandbox's reaper: every process of the sandbox descends from it. */
  readonly reaperPid: number;
  /** The program's first process. */
  readonly programPid: number;
  /** The policy given at attach (a structured clone of it in the worker). */
  readonly policy: P;
}

/** The live processes of a sandbox, as the worker tracks them. */
export interface ProcessView {
  /**
   * Pids seen alive. Processes are found when they make an intercepted
   * syscall, when a fork-like call was answered, every 100 ms, and on
   * {@link refresh}; an exit is seen through the process's pidfd.
   */
  readonly live: ReadonlySet<number>;
  /** Walks the sandbox's process tree now (start events fire) and returns {@link live}. */
  refresh(): ReadonlySet<number>;
}

/** A session as worker-thread handlers and hooks see it. */
export interface WorkerSession<P = unknown> extends SessionInfo<P> {
  readonly processes: ProcessView;
  /** Kills every process of the sandbox through its reaper; `reason` is reported. */
  kill(reason: string): void;
  /**
   * System calls made with the sandbox's own authority (its reaper, in the
   * policy's Landlock domain), or null where the sandbox has no broker (no
   * module on for it acts on its behalf). A delegated subtree shares its
   * listener's: the outer policy's authority, which a module must narrow to
   * the subtree's own policy (`policy` is already both intersected).
   */
  readonly onBehalf: OnBehalf | null;
  /**
   * Whether thread `tid` runs under a Landlock domain narrower than this
   * session's: it, or a process it descends from, called
   * landlock_restrict_self inside the sandbox since the session began (a
   * sandbox or jail made inside), or, for a listener's own session, it is in
   * a delegated subtree. What is done on the sandbox's behalf must not be
   * done for it: let the kernel decide. True when it cannot be told.
   */
  narrowed(tid: number): boolean;
  /**
   * Tells the main thread something about the sandbox (a port it bound
   * under portRemap): the supervisor's `Session.onNotice` listeners get it.
   * `detail` must survive structured clone; say things that change, once.
   */
  notice(module: string, kind: string, detail: unknown): void;
  /**
   * Shares `value` with the other modules of this session under `key` (a
   * {@link Provision}): a module provides, another uses, neither importing
   * the other. Kept until the session ends; provided again, replaced.
   */
  provide<T>(key: Provision<T>, value: T): void;
  /** What a module of this session provided under `key`, if any. */
  provided<T>(key: Provision<T>): T | undefined;
}

/** Something a module told the main thread about a sandbox ({@link WorkerSession.notice}). */
export interface SessionNotice {
  /** The module that told it. */
  readonly module: string;
  /** What it is about, in the module's words (`port`). */
  readonly kind: string;
  readonly detail: unknown;
}
