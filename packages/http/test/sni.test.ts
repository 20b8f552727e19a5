import { type AddressInfo, createServer, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { readHello } from '../src/index.js';

/** The first bytes a TLS client sends (its ClientHello record), captured on loopback. */
async function clientHello(options: tls.ConnectionOptions): Promise<Buffer> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const captured = new Promise<Buffer>((resolve) => {
    server.once('connection', (socket) => {
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        const all = Buffer.concat(chunks);
        if (all.length >= 5 && all.length >= 5 + all.readUInt16BE(3)) {
          resolve(all.subarray(0, 5 + all.readUInt16BE(3)));
          socket.destroy();
        }
      });
    });
  });
  const client = tls.connect({
    host: '127.0.0.1',
    port: (server.address() as AddressInfo).port,
    ...options,
  });
  client.on('error', () => {});
  const hello = await captured;
  client.destroy();
  server.close();
  return hello;
}

/** A hello whose SNI is `name` written in place of a same-length name (Node will not send an IP as SNI). */
async function clientHelloWithName(name: string): Promise<Buffer> {
  const placeholder = `${'x'.repeat(name.length - 2)}.t`;
  const hello = await clientHello({ servername: placeholder });
  const at = hello.indexOf(placeholder);
  hello.write(name, at, 'ascii');
  return hello;
}

function streamOf(bytes: Buffer, end = true): Socket {
  const stream = new PassThrough();
  stream.write(bytes);
  if (end) stream.end();
  return stream as unknown as Socket;
}

/** A small deterministic generator (xorshift32): the fuzz cases are the same on every run. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
}

describe('the ClientHello', () => {
  it('gives the server name and ALPN protocols, and leaves the bytes for a TLS server', async () => {
    const hello = await clientHello({
      servername: 'API.Example.TEST',
      ALPNProtocols: ['h2', 'http/1.1'],
    });
    const stream = streamOf(hello, false);
    expect(await readHello(stream)).toEqual({
      serverName: 'api.example.test',
      alpn: ['h2', 'http/1.1'],
    });
    // Everything read was put back.
    expect(Buffer.compare((stream as unknown as PassThrough).read() as Buffer, hello)).toBe(0);
    const bare = await clientHello({});
    expect(await readHello(streamOf(bare))).toEqual({ serverName: null, alpn: [] });
  });

  it('is refused when it is not TLS, not a hello, or does not arrive', async () => {
    await expect(readHello(streamOf(Buffer.from('GET / HTTP/1.1\r\n\r\n')))).rejects.toThrow();
    const hello = await clientHello({ servername: 'a.test' });
    const notHello = Buffer.from(hello);
    notHello[5] = 2; // a ServerHello
    await expect(readHello(streamOf(notHello))).rejects.toThrow();
    await expect(readHello(streamOf(hello.subarray(0, 40), false), 200)).rejects.toThrow(
      'no ClientHello in time',
    );
    // An address in SNI (a client set on a host name check that compares IPs).
    const literal = await clientHelloWithName('10.0.0.1');
    await expect(readHello(streamOf(literal))).rejects.toThrow('the server name is an IP address');
  });

  it('fuzzed: every mutation of a real hello settles, and a name it gives is a DNS name', async () => {
    const hello = await clientHello({ servername: 'fuzz.example.test', ALPNProtocols: ['h2'] });
    const next = random(0x5eed);
    const cases: Buffer[] = [];
    for (let index = 0; index < 400; index++) {
      const bytes = Buffer.from(hello);
      const kind = index % 4;
      if (kind === 0) {
        // Flip a few bytes anywhere.
        for (let flips = 1 + Math.floor(next() * 4); flips > 0; flips--) {
          bytes[Math.floor(next() * bytes.length)] = Math.floor(next() * 256);
        }
        cases.push(bytes);
      } else if (kind === 1) {
        // Truncate (the stream ends early).
        cases.push(bytes.subarray(0, Math.floor(next() * bytes.length)));
      } else if (kind === 2) {
        // Overwrite a 16-bit length somewhere with a large or small value.
        const at = 5 + Math.floor(next() * (bytes.length - 7));
        bytes.writeUInt16BE(next() < 0.5 ? 0xffff : Math.floor(next() * 64), at);
        cases.push(bytes);
      } else {
        // A handshake record of random bytes.
        const body = Buffer.alloc(Math.floor(next() * 600), 0).map(() => Math.floor(next() * 256));
        const header = Buffer.from([0x16, 0x03, 0x01, body.length >> 8, body.length & 255]);
        cases.push(Buffer.concat([header, body]));
      }
    }
    let named = 0;
    const outcomes = await Promise.all(
      cases.map(async (bytes) => {
        try {
          const result = await readHello(streamOf(bytes), 2000);
          if (result.serverName !== null) {
            named++;
            expect(result.serverName).toMatch(/^[a-z0-9_.-]+$/);
          }
          return 'read';
        } catch (error) {
          expect(error).toBeInstanceOf(Error);
          return 'refused';
        }
      }),
    );
    expect(outcomes).toHaveLength(cases.length);
    expect(outcomes.filter((outcome) => outcome === 'refused').length).toBeGreaterThan(100);
    expect(named).toBeGreaterThan(0);
  });
});
