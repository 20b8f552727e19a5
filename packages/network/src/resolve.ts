import { lookup } from 'node:dns/promises';
import { isWildcardHost, netRulesOf, type Policy } from '@sandlock/policy';

/** A host name of the rules could not be resolved: the sandbox does not start. */
export class HostResolutionError extends Error {
  override readonly name = 'HostResolutionError';
}

/**
 * The addresses every host name of the policy's rules resolves to now
 * (getaddrinfo, all of them), for the sandbox's whole life: what it may
 * reach does not change when DNS does, and the sandbox sees the same
 * addresses in its /etc/hosts.
 *
 * @throws HostResolutionError naming the host that did not resolve.
 */
export async function resolveNetHosts(
  policy: Pick<Policy, 'netAllow' | 'netDeny'>,
): Promise<Record<string, string[]>> {
  const names = new Set(
    (netRulesOf(policy)?.rules ?? []).flatMap((rule) =>
      // A wildcard is matched by name (the HTTP proxy), never pinned.
      rule.host === null || isWildcardHost(rule.host) ? [] : [rule.host],
    ),
  );
  const resolved: Record<string, string[]> = {};
  await Promise.all(
    [...names].map(async (name) => {
      try {
        const found = await lookup(name, { all: true, verbatim: true });
        resolved[name] = [...new Set(found.map((entry) => entry.address))];
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? String(error);
        throw new HostResolutionError(`sandlock: cannot resolve ${name} (${code})`);
      }
    }),
  );
  return resolved;
}
