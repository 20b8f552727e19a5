// The CA HTTPS interception signs with, and the leaf certificates it mints.
import {
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  X509Certificate as NodeCertificate,
  webcrypto,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
// @peculiar/x509 resolves its algorithms through tsyringe, which needs the Reflect metadata API.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
type Algorithm = webcrypto.Algorithm;
type EcdsaParams = webcrypto.EcdsaParams;

const subtle = webcrypto.subtle;
// @peculiar/x509 takes a WebCrypto provider: Node's.
const provider = webcrypto as unknown as Parameters<typeof x509.X509CertificateGenerator.create>[1];
const EC_KEY = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const EC_SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;
const HOUR = 3600_000;
const DAY = 24 * HOUR;

/** A problem with the CA files (`--http-ca`, `--http-key`). */
export class CaError extends Error {
  override readonly name = 'CaError';
}

function pemOfKey(pkcs8: ArrayBuffer): string {
  return createPrivateKey({ key: Buffer.from(pkcs8), format: 'der', type: 'pkcs8' })
    .export({ type: 'pkcs8', format: 'pem' })
    .toString();
}

function signingAlgorithm(key: KeyObject): {
  import: webcrypto.RsaHashedImportParams | webcrypto.EcKeyImportParams;
  sign: Algorithm | EcdsaParams;
} {
  if (key.asymmetricKeyType === 'rsa') {
    const algorithm = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    return { import: algorithm, sign: algorithm };
  }
  if (key.asymmetricKeyType === 'ec') {
    const curves: Record<string, string> = {
      prime256v1: 'P-256',
      secp384r1: 'P-384',
      secp521r1: 'P-521',
    };
    const namedCurve = curves[key.asymmetricKeyDetails?.namedCurve ?? ''];
    if (namedCurve !== undefined) {
      return { import: { name: 'ECDSA', namedCurve }, sign: EC_SIGN };
    }
  }
  throw new CaError(
    `--http-key: a ${key.asymmetricKeyType} key${key.asymmetricKeyDetails?.namedCurve ? ` on ${key.asymmetricKeyDetails.namedCurve}` : ''} cannot sign here (RSA, or ECDSA on P-256, P-384 or P-521)`,
  );
}

/**
 * A CA: its certificate (PEM, what the sandbox trusts) and its signing key.
 * {@link CertificateAuthority.ephemeral} makes one whose key exists only in
 * this process's memory; {@link CertificateAuthority.fromFiles} reads the
 * user's.
 */
export class CertificateAuthority {
  private constructor(
    /** The CA certificate, PEM. */
    readonly certificatePem: string,
    private readonly certificate: x509.X509Certificate,
    private readonly signingKey: CryptoKey,
    private readonly sign: Algorithm | EcdsaParams,
    private readonly notAfter: Date,
  ) {}

  /** A CA made now for one sandbox: ECDSA P-256, valid 30 days, its key never exported. */
  static async ephemeral(name = 'Sandlock sandbox CA'): Promise<CertificateAuthority> {
    const keys = (await subtle.generateKey(EC_KEY, false, ['sign', 'verify'])) as CryptoKeyPair;
    const now = Date.now();
    const notAfter = new Date(now + 30 * DAY);
    const certificate = await x509.X509CertificateGenerator.createSelfSigned(
      {
        name: [{ CN: [name] }, { O: ['Sandlock'] }],
        notBefore: new Date(now - HOUR),
        notAfter,
        keys,
        signingAlgorithm: EC_SIGN,
        extensions: [
          new x509.BasicConstraintsExtension(true, 0, true),
          new x509.KeyUsagesExtension(
            x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
            true,
          ),
          await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, provider),
        ],
      },
      provider,
    );
    return new CertificateAuthority(
      certificate.toString('pem'),
      certificate,
      keys.privateKey,
      EC_SIGN,
      notAfter,
    );
  }

  /**
   * The user's CA: a PEM certificate that is a CA (basicConstraints cA) and
   * its PEM private key (RSA or ECDSA), checked to belong together.
   *
   * @throws CaError naming the flag and what is wrong.
   */
  static async fromPem(certificatePem: string, keyPem: string): Promise<CertificateAuthority> {
    let node: NodeCertificate;
    try {
      node = new NodeCertificate(certificatePem);
    } catch (error) {
      throw new CaError(`--http-ca: not a PEM certificate (${(error as Error).message})`);
    }
    if (!node.ca) throw new CaError('--http-ca: the certificate is not a CA (basicConstraints cA)');
    let key: KeyObject;
    try {
      key = createPrivateKey(keyPem);
    } catch (error) {
      throw new CaError(`--http-key: not a PEM private key (${(error as Error).message})`);
    }
    const spki = (k: KeyObject) => k.export({ type: 'spki', format: 'der' });
    if (!spki(createPublicKey(key)).equals(spki(node.publicKey))) {
      throw new CaError("--http-key: the key is not the --http-ca certificate's");
    }
    const notAfter = new Date(node.validTo);
    if (notAfter.getTime() < Date.now()) {
      throw new CaError(`--http-ca: the certificate expired on ${node.validTo}`);
    }
    const algorithm = signingAlgorithm(key);
    const der = key.export({ type: 'pkcs8', format: 'der' });
    const signingKey = await subtle.importKey('pkcs8', der, algorithm.import, false, ['sign']);
    return new CertificateAuthority(
      node.toString(),
      new x509.X509Certificate(node.raw),
      signingKey,
      algorithm.sign,
      notAfter,
    );
  }

  /** {@link fromPem} of two files. */
  static async fromFiles(certificatePath: string, keyPath: string): Promise<CertificateAuthority> {
    const read = (path: string, flag: string) => {
      try {
        return readFileSync(path, 'utf8');
      } catch (error) {
        throw new CaError(
          `${flag}: cannot read ${path} (${(error as NodeJS.ErrnoException).code})`,
        );
      }
    };
    return CertificateAuthority.fromPem(
      read(certificatePath, '--http-ca'),
      read(keyPath, '--http-key'),
    );
  }

  /**
   * A certificate for `host` (a name or an IP address) signed by this CA,
   * for `publicKey`: valid from an hour ago for 7 days (never past the CA),
   * for server authentication only.
   */
  async issue(host: string, publicKey: CryptoKey): Promise<string> {
    const now = Date.now();
    const notAfter = new Date(Math.min(now + 7 * DAY, this.notAfter.getTime()));
    const name = isIP(host)
      ? { type: 'ip' as const, value: host }
      : { type: 'dns' as const, value: host };
    const certificate = await x509.X509CertificateGenerator.create(
      {
        subject: [{ CN: [host.length <= 64 ? host : 'sandlock'] }],
        issuer: this.certificate.subjectName,
        notBefore: new Date(now - HOUR),
        notAfter,
        publicKey,
        signingKey: this.signingKey,
        signingAlgorithm: this.sign,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
          new x509.SubjectAlternativeNameExtension([name], false),
          await x509.AuthorityKeyIdentifierExtension.create(this.certificate, false, provider),
        ],
      },
      provider,
    );
    return certificate.toString('pem');
  }
}

/** A leaf certificate and its key, PEM, for `tls.createSecureContext`. */
export interface Leaf {
  readonly cert: string;
  readonly key: string;
}

/**
 * Leaf certificates minted per host and kept (the last `limit` hosts used):
 * one ECDSA key for every leaf of a sandbox, made once.
 */
export class LeafCache {
  private readonly leaves = new Map<string, Promise<Leaf>>();
  private keys: Promise<{ pair: CryptoKeyPair; pem: string }> | null = null;

  constructor(
    private readonly ca: CertificateAuthority,
    private readonly limit = 1000,
  ) {}

  private leafKeys(): Promise<{ pair: CryptoKeyPair; pem: string }> {
    this.keys ??= (async () => {
      const pair = (await subtle.generateKey(EC_KEY, true, ['sign', 'verify'])) as CryptoKeyPair;
      return { pair, pem: pemOfKey(await subtle.exportKey('pkcs8', pair.privateKey)) };
    })();
    return this.keys;
  }

  /** The leaf for `host` (lower case), minted on first use. */
  get(host: string): Promise<Leaf> {
    const known = this.leaves.get(host);
    if (known !== undefined) {
      // Most recently used last: the oldest is the first key of the map.
      this.leaves.delete(host);
      this.leaves.set(host, known);
      return known;
    }
    const leaf = (async () => {
      const keys = await this.leafKeys();
      return { cert: await this.ca.issue(host, keys.pair.publicKey), key: keys.pem };
    })();
    leaf.catch(() => this.leaves.delete(host));
    this.leaves.set(host, leaf);
    while (this.leaves.size > this.limit) this.leaves.delete(this.leaves.keys().next().value!);
    return leaf;
  }

  private readonly contexts = new WeakMap<Promise<Leaf>, Promise<SecureContext>>();

  /** The TLS context serving `host`'s leaf, made once per leaf. */
  context(host: string): Promise<SecureContext> {
    const leaf = this.get(host);
    let context = this.contexts.get(leaf);
    if (context === undefined) {
      context = leaf.then((pem) => createSecureContext({ cert: pem.cert, key: pem.key }));
      this.contexts.set(leaf, context);
    }
    return context;
  }

  get size(): number {
    return this.leaves.size;
  }
}
