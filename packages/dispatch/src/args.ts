// Argument and session helpers every handler module repeats: light (no koffi),
// as the rest of @sandlock/dispatch/module.
import type { OnBehalf } from './on-behalf.js';

/** A register argument as the kernel reads an `int`: its low 32 bits, signed. */
export function int(value: bigint | undefined): number {
  return Number(BigInt.asIntN(32, value ?? 0n));
}

/** A register argument as the kernel reads an `unsigned int`: its low 32 bits. */
export function uint(value: bigint | undefined): number {
  return Number(BigInt.asUintN(32, value ?? 0n));
}

/** The session's on-behalf broker; throws (the call fails closed) naming `module` when it has none. */
export function brokerOf(
  ctx: { readonly session: { readonly onBehalf: OnBehalf | null } },
  module: string,
): OnBehalf {
  const broker = ctx.session.onBehalf;
  if (broker === null) throw new Error(`sandlock: the ${module} module has no broker`);
  return broker;
}

/**
 * The module's state for this call's session, kept by session id; throws (the
 * call fails closed) when it is missing or was an error at setup, `what`
 * naming it in the message.
 */
export function sessionOf<S>(
  sessions: ReadonlyMap<number, S | Error>,
  ctx: { readonly session: { readonly id: number } },
  what: string,
): S {
  const session = sessions.get(ctx.session.id);
  if (session === undefined || session instanceof Error) {
    throw new Error(
      `sandlock: ${what} of this sandbox is not usable${session instanceof Error ? `: ${session.message}` : ''}`,
    );
  }
  return session;
}
