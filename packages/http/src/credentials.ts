// The secrets of `credentials`, read by the supervisor, and the headers they make.
import { readFileSync } from 'node:fs';
import { type AuthScheme, type Policy, parseCredentialSource } from '@sandlock/policy';

/** A credential could not be read, or the sandbox could read it itself. */
export class CredentialError extends Error {
  override readonly name = 'CredentialError';
}

/** The secrets by name, and what the sandbox must not be given to keep them from it. */
export interface Credentials {
  readonly secrets: ReadonlyMap<string, string>;
  /** Variables that hold a secret: to be removed from the sandbox's environment. */
  readonly variables: readonly string[];
  /** Files that hold a secret: the policy must not let the sandbox read them. */
  readonly files: readonly string[];
}

/**
 * Reads every credential of the policy now: `env:VARIABLE` from `env`
 * (this process's environment), `file:PATH` from the file (a trailing
 * newline cut).
 *
 * @param readable Whether the sandbox could read a path (its policy's
 *   fsRead/fsWrite/fsDeny); a credential it could read is refused.
 * @throws CredentialError naming the credential and the problem.
 */
export function readCredentials(
  policy: Pick<Policy, 'credentials'>,
  readable: (path: string) => boolean,
  env: NodeJS.ProcessEnv = process.env,
): Credentials {
  const secrets = new Map<string, string>();
  const variables: string[] = [];
  const files: string[] = [];
  for (const [name, text] of Object.entries(policy.credentials)) {
    const source = parseCredentialSource(text);
    if (typeof source === 'string') throw new TypeError(`sandlock: unchecked credential ${name}`);
    let secret: string;
    if (source.kind === 'env') {
      const value = env[source.variable];
      if (value === undefined || value === '') {
        throw new CredentialError(`--credential ${name}: ${source.variable} is not set`);
      }
      secret = value;
      variables.push(source.variable);
    } else {
      if (readable(source.path)) {
        throw new CredentialError(
          `--credential ${name}: the sandbox could read ${source.path} itself (its fsRead/fsWrite hold it)`,
        );
      }
      try {
        secret = readFileSync(source.path, 'utf8').replace(/\r?\n$/, '');
      } catch (error) {
        throw new CredentialError(
          `--credential ${name}: cannot read ${source.path} (${(error as NodeJS.ErrnoException).code})`,
        );
      }
      files.push(source.path);
    }
    if (/[\r\n\0]/.test(secret)) {
      throw new CredentialError(`--credential ${name}: a secret is one line, without NUL`);
    }
    secrets.set(name, secret);
  }
  return { secrets, variables, files };
}

/** The header a scheme puts a secret in: [name, value]. */
export function authHeader(scheme: AuthScheme, secret: string): [string, string] {
  switch (scheme.kind) {
    case 'bearer':
      return ['authorization', `Bearer ${secret}`];
    case 'basic':
      return ['authorization', `Basic ${Buffer.from(secret).toString('base64')}`];
    default:
      return [scheme.name.toLowerCase(), secret];
  }
}
