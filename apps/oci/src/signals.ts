import { constants } from 'node:os';
import { OciError } from './errors.js';

/** The descriptor `create` and `exec` read the supervisor's readiness from. */
export const READY_FD = 3;

/** A signal from the command line: a number (as the shim sends) or a name with or without SIG. */
export function signalName(text: string): NodeJS.Signals {
  const signals = constants.signals as Record<string, number>;
  if (/^\d+$/.test(text)) {
    const name = Object.keys(signals).find((key) => signals[key] === Number(text));
    if (name !== undefined) return name as NodeJS.Signals;
  } else {
    const upper = text.toUpperCase();
    const name = upper.startsWith('SIG') ? upper : `SIG${upper}`;
    if (name in signals) return name as NodeJS.Signals;
  }
  throw new OciError(`unknown signal '${text}'`);
}
