import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaError, CertificateAuthority, caBundle, LeafCache } from '../src/index.js';
import { makePki, type TestPki } from './helpers.js';

let pki: TestPki;
let other: TestPki;

beforeAll(() => {
  pki = makePki(['server.test']);
  other = makePki(['other.test']);
});
afterAll(() => {
  pki?.remove();
  other?.remove();
});

/** `openssl verify` of a leaf against a CA file: an independent verifier. */
function opensslVerifies(caPath: string, leafPem: string, host: string): boolean {
  const leaf = join(pki.dir, `leaf-${Math.random()}.pem`);
  writeFileSync(leaf, leafPem);
  try {
    const flag = /^[\d.]+$/.test(host) ? '-verify_ip' : '-verify_hostname';
    execFileSync(
      'openssl',
      ['verify', '-purpose', 'sslserver', '-CAfile', caPath, flag, host, leaf],
      {
        stdio: 'pipe',
      },
    );
    return true;
  } catch {
    return false;
  }
}

describe('the CA and its leaf certificates', () => {
  it('an ephemeral CA mints leaves for names and addresses that openssl accepts', async () => {
    const ca = await CertificateAuthority.ephemeral();
    const caPath = join(pki.dir, 'ephemeral.pem');
    writeFileSync(caPath, ca.certificatePem);
    expect(new X509Certificate(ca.certificatePem).ca).toBe(true);
    const leaves = new LeafCache(ca);
    const leaf = await leaves.get('api.example.test');
    const parsed = new X509Certificate(leaf.cert);
    expect(parsed.ca).toBe(false);
    expect(parsed.subjectAltName).toBe('DNS:api.example.test');
    expect(parsed.checkIssued(new X509Certificate(ca.certificatePem))).toBe(true);
    expect(opensslVerifies(caPath, leaf.cert, 'api.example.test')).toBe(true);
    expect(opensslVerifies(caPath, leaf.cert, 'other.example.test')).toBe(false);
    const ip = await leaves.get('10.0.0.1');
    expect(new X509Certificate(ip.cert).subjectAltName).toBe('IP Address:10.0.0.1');
    expect(opensslVerifies(caPath, ip.cert, '10.0.0.1')).toBe(true);
    // Not trusted by anyone else: the test CA does not verify it.
    expect(opensslVerifies(pki.caPath, leaf.cert, 'api.example.test')).toBe(false);
  });

  it('keeps the last leaves used, up to its limit, and mints each host once', async () => {
    const leaves = new LeafCache(await CertificateAuthority.ephemeral(), 2);
    const first = leaves.get('a.test');
    expect(leaves.get('a.test')).toBe(first);
    await Promise.all([leaves.get('b.test'), leaves.get('a.test'), leaves.get('c.test')]);
    expect(leaves.size).toBe(2);
    // a.test was used after b.test: b.test is the one dropped.
    expect(leaves.get('a.test')).toBe(first);
  });

  it("signs with the user's CA, checked against its key", async () => {
    const ca = await CertificateAuthority.fromFiles(pki.caPath, pki.caKeyPath);
    const leaf = await new LeafCache(ca).get('intercepted.test');
    expect(opensslVerifies(pki.caPath, leaf.cert, 'intercepted.test')).toBe(true);
    // The trust bundle a sandbox gets verifies it too.
    const bundle = caBundle(ca.certificatePem, (path) =>
      path === '/etc/ssl/certs/ca-certificates.crt' ? other.caPem : null,
    );
    const bundlePath = join(pki.dir, 'bundle.pem');
    writeFileSync(bundlePath, bundle.files.get(bundle.primary)!);
    expect(opensslVerifies(bundlePath, leaf.cert, 'intercepted.test')).toBe(true);
  });

  it('says what is wrong with the CA files, naming the flag', async () => {
    await expect(CertificateAuthority.fromPem(pki.caPem, other.caKeyPem)).rejects.toThrow(
      new CaError("--http-key: the key is not the --http-ca certificate's"),
    );
    await expect(CertificateAuthority.fromPem(pki.cert, pki.key)).rejects.toThrow(
      new CaError('--http-ca: the certificate is not a CA (basicConstraints cA)'),
    );
    await expect(CertificateAuthority.fromPem('nonsense', pki.caKeyPem)).rejects.toThrow(
      /^--http-ca: not a PEM certificate/,
    );
    await expect(CertificateAuthority.fromPem(pki.caPem, 'nonsense')).rejects.toThrow(
      /^--http-key: not a PEM private key/,
    );
    await expect(
      CertificateAuthority.fromFiles('/nonexistent/ca.pem', pki.caKeyPath),
    ).rejects.toThrow(new CaError('--http-ca: cannot read /nonexistent/ca.pem (ENOENT)'));
  });
});

describe('trust bundles', () => {
  it("are each of the host's bundles followed by the CA, named by the usual variables", () => {
    const files: Record<string, string> = {
      '/etc/ssl/certs/ca-certificates.crt': 'SYSTEM ROOTS\n',
      '/etc/ssl/cert.pem': 'OTHER ROOTS',
    };
    const bundle = caBundle('CA PEM\n', (path) => files[path] ?? null);
    expect([...bundle.files]).toEqual([
      [
        '/etc/ssl/certs/ca-certificates.crt',
        "SYSTEM ROOTS\n# Sandlock: the sandbox's CA for HTTPS interception\nCA PEM\n",
      ],
      [
        '/etc/ssl/cert.pem',
        "OTHER ROOTS\n# Sandlock: the sandbox's CA for HTTPS interception\nCA PEM\n",
      ],
    ]);
    expect(bundle.env).toEqual({
      SSL_CERT_FILE: '/etc/ssl/certs/ca-certificates.crt',
      NODE_EXTRA_CA_CERTS: '/etc/ssl/certs/ca-certificates.crt',
      REQUESTS_CA_BUNDLE: '/etc/ssl/certs/ca-certificates.crt',
      CURL_CA_BUNDLE: '/etc/ssl/certs/ca-certificates.crt',
    });
    expect([...caBundle('CA', () => null).files]).toEqual([
      ['/etc/ssl/certs/ca-certificates.crt', 'CA\n'],
    ]);
  });

  it("starts with this host's own bundle, unchanged", () => {
    const bundle = caBundle('CA PEM\n');
    const host = bundle.files.get('/etc/ssl/certs/ca-certificates.crt');
    expect(host).toBeDefined();
    expect(host!.endsWith('CA PEM\n')).toBe(true);
    expect(host!.length).toBeGreaterThan(10_000);
  });
});
