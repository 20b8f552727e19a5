// Messages between the supervisor (main thread) and its workers.

import type { MessagePort } from 'node:worker_threads';
import type { Notification } from './context.js';
import type { RefusalReport } from './refusal.js';
import type { ResolvedModuleRef } from './registry.js';
import type { SessionNotice } from './session-view.js';

export interface WorkerData {
  modules: ResolvedModuleRef[];
  /** Main → worker messages, read synchronously (receiveMessageOnPort). */
  control: MessagePort;
  /** Written by the main thread after posting to `control`, to wake the loop. */
  wakeFd: number;
  /** Int32Array over a SharedArrayBuffer: [0] = 1 asks the loop to stop. */
  stop: Int32Array;
}

export type ToWorker =
  | {
      type: 'attach';
      session: number;
      listenerFd: number;
      reaperPid: number;
      reaperPidfd: number;
      /** The reaper's start time (startTimeOf) when the pidfd was opened, null if unread. */
      reaperStart: number | null;
      programPid: number;
      policy: unknown;
      /** Indexes of the modules that are on, in load order. */
      enabled: number[];
      track: boolean;
      /** The supervisor's end of the sandbox's broker socket, or -1. */
      brokerFd: number;
      /** Forward the modules' refusals (`refusal` messages). */
      report: boolean;
    }
  | {
      type: 'delegate';
      /** The session whose listener the delegated subtree's calls arrive on. */
      parent: number;
      session: number;
      reaperPid: number;
      reaperPidfd: number;
      reaperStart: number | null;
      programPid: number;
      policy: unknown;
      enabled: number[];
      track: boolean;
      report: boolean;
    }
  /** Start or stop forwarding a session's refusals. */
  | { type: 'report'; session: number; on: boolean }
  /**
   * Replaces fields of a session's policy (limits changed on a running
   * sandbox); answered with `updated` and the same `seq` once in force.
   */
  | { type: 'update'; session: number; seq: number; fields: Record<string, unknown> }
  | { type: 'stop' };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'failed'; message: string; stack?: string }
  | {
      type: 'defer';
      session: number;
      module: number;
      syscall: string;
      notification: Notification;
      payload: unknown;
    }
  /** `module`: the module whose answer or handler killed it. */
  | { type: 'kill'; session: number; reason: string; module?: string }
  | { type: 'ended'; session: number }
  /** An `update` is in force: the handlers of its session see the new fields. */
  | { type: 'updated'; session: number; seq: number }
  | ({ type: 'refusal'; session: number } & RefusalReport)
  | ({ type: 'notice'; session: number } & SessionNotice)
  | {
      type: 'error';
      session?: number;
      module?: string;
      syscall?: string;
      message: string;
      stack?: string;
    };
