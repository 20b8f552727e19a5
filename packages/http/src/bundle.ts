// The trust bundles a sandbox reads: the system's, with the sandbox's CA added.
import { readFileSync } from 'node:fs';

/**
 * Where distributions keep the PEM bundle of trusted CAs (the first is
 * Debian's and Ubuntu's, which curl, OpenSSL, Python and git read there).
 */
export const BUNDLE_PATHS: readonly string[] = [
  '/etc/ssl/certs/ca-certificates.crt',
  '/etc/pki/tls/certs/ca-bundle.crt',
  '/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem',
  '/etc/ssl/ca-bundle.pem',
  '/etc/ssl/cert.pem',
];

/** Variables that name a bundle for the usual clients. */
export const BUNDLE_VARIABLES: readonly string[] = [
  'SSL_CERT_FILE', // OpenSSL, and what links it (Ruby, PHP, wget with OpenSSL)
  'NODE_EXTRA_CA_CERTS', // Node (added to its built-in roots)
  'REQUESTS_CA_BUNDLE', // Python requests
  'CURL_CA_BUNDLE', // curl
];

export interface CaBundle {
  /** Path → content: each bundle of this host, with the CA appended. */
  readonly files: ReadonlyMap<string, string>;
  /** The bundle the variables name: the first of {@link BUNDLE_PATHS} this host has. */
  readonly primary: string;
  /** The variables to set in the sandbox's environment. */
  readonly env: Readonly<Record<string, string>>;
}

/**
 * The content the sandbox should see for every trust bundle this host has
 * (the original followed by `caPem`), and the variables that point the usual
 * clients at it. Host files are read, never written. A host with no bundle
 * gets the first path holding the CA alone.
 */
export function caBundle(
  caPem: string,
  read: (path: string) => string | null = (path) => {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return null;
    }
  },
): CaBundle {
  const ca = caPem.endsWith('\n') ? caPem : `${caPem}\n`;
  const files = new Map<string, string>();
  for (const path of BUNDLE_PATHS) {
    const original = read(path);
    if (original === null) continue;
    const separated = original === '' || original.endsWith('\n') ? original : `${original}\n`;
    files.set(path, `${separated}# Sandlock: the sandbox's CA for HTTPS interception\n${ca}`);
  }
  if (files.size === 0) files.set(BUNDLE_PATHS[0]!, ca);
  const primary = files.keys().next().value!;
  const env = Object.fromEntries(BUNDLE_VARIABLES.map((name) => [name, primary]));
  return { files, primary, env };
}
