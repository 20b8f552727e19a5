// The server name and ALPN protocols of a TLS ClientHello, read without terminating TLS.
import { isIP, type Socket } from 'node:net';
import { readTlsClientHello } from 'read-tls-client-hello';

export interface Hello {
  /** The SNI host name, lower case without a trailing dot; null when the hello has none. */
  readonly serverName: string | null;
  /** The ALPN protocols offered, in order; empty when none. */
  readonly alpn: readonly string[];
}

const NAME = /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/;

/**
 * Reads the ClientHello at the start of `socket` (read-tls-client-hello,
 * which puts the bytes back with `unshift`: the TLS stream is left whole
 * for a splice or a TLS server). A server name that is not a plain DNS name
 * is an error (an IDN travels as its `xn--` form).
 *
 * @throws Error when the first record is no ClientHello, the hello is
 *   malformed, or it has not arrived within `timeout` ms.
 */
export async function readHello(socket: Socket, timeout = 10_000): Promise<Hello> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('no ClientHello in time')), timeout);
  });
  try {
    const hello = await Promise.race([readTlsClientHello(socket), late]);
    const sni = hello.extensions.find((extension) => extension.id === 0x0000);
    const alpnExtension = hello.extensions.find((extension) => extension.id === 0x0010);
    let serverName: string | null = null;
    if (sni !== undefined) {
      const name = (sni.data as { serverName?: string } | null)?.serverName;
      if (typeof name !== 'string') throw new Error('malformed server_name extension');
      serverName = name.toLowerCase().replace(/\.$/, '');
      if (!NAME.test(serverName)) throw new Error('the server name is not a DNS name');
      // RFC 6066 §3: "Literal IPv4 and IPv6 addresses are not permitted in HostName".
      if (isIP(serverName) !== 0) throw new Error('the server name is an IP address');
    }
    const protocols = (alpnExtension?.data as { protocols?: unknown } | null)?.protocols;
    if (alpnExtension !== undefined && !Array.isArray(protocols)) {
      throw new Error('malformed ALPN extension');
    }
    return { serverName, alpn: Array.isArray(protocols) ? protocols.map(String) : [] };
  } finally {
    clearTimeout(timer);
  }
}
