// The sandbox's DNS: answered by the supervisor, for the names the rules allow only.
import type { RemoteInfo, Socket as UdpSocket } from 'node:dgram';
import { isIPv4, isIPv6, type Socket } from 'node:net';
import * as packet from 'dns-packet';
import type { NameSource } from './names.js';

/** What a query was answered, for logs and tests. */
export interface DnsOutcome {
  readonly name: string | null;
  readonly type: string | null;
  readonly rcode: 'NOERROR' | 'REFUSED' | 'FORMERR' | 'SERVFAIL' | 'NXDOMAIN';
  readonly addresses: readonly string[];
}

const TTL = 30;
/** A UDP answer stays under the classic 512 bytes (RFC 1035 §4.2.1): at most this many records. */
const MAX_ANSWERS = 16;
const MAX_TCP_QUERY = 4096;

/**
 * Answers DNS queries (wire format) the way the sandbox may see them: A and
 * AAAA for names some rule allows, with the addresses the supervisor
 * resolved (loopback, link-local, private and metadata addresses left out
 * unless a rule names them); every other name, every other type (TXT, MX,
 * ANY…) and anything malformed REFUSED or FORMERR. No query is sent on
 * for a name no rule allows.
 */
export class SandboxDns {
  constructor(
    private readonly names: NameSource,
    private readonly onAnswer?: (outcome: DnsOutcome) => void,
  ) {}

  /** The answer to one query message; null when it is too malformed to answer at all. */
  async answer(query: Buffer): Promise<Buffer | null> {
    let decoded: packet.Packet;
    try {
      decoded = packet.decode(query);
    } catch {
      // A header is enough to say FORMERR to the right id.
      if (query.length < 12) return null;
      const reply = Buffer.from(query.subarray(0, 12));
      reply[2] = 0x80 | (reply[2]! & 0x01); // QR, RD as asked
      reply[3] = 0x01; // FORMERR
      reply.fill(0, 4, 12);
      this.onAnswer?.({ name: null, type: null, rcode: 'FORMERR', addresses: [] });
      return reply;
    }
    const questions = decoded.questions ?? [];
    const question = questions[0];
    const reply = (rcode: DnsOutcome['rcode'], answers: packet.Answer[] = []) => {
      const outcome: DnsOutcome = {
        name: question?.name ?? null,
        type: question?.type ?? null,
        rcode,
        addresses: answers.map((answer) => String((answer as { data?: unknown }).data)),
      };
      this.onAnswer?.(outcome);
      return packet.encode({
        id: decoded.id ?? 0,
        type: 'response',
        // RD echoed, RA set; the rcode in the low bits.
        flags:
          ((decoded.flags ?? 0) & packet.RECURSION_DESIRED) |
          packet.RECURSION_AVAILABLE |
          ({ NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 } as const)[rcode],
        questions: question === undefined ? [] : [question],
        answers,
      });
    };
    if (decoded.type !== 'query' || questions.length !== 1 || question === undefined) {
      return reply('FORMERR');
    }
    if ((question.class ?? 'IN') !== 'IN') return reply('REFUSED');
    const name = question.name.toLowerCase().replace(/\.$/, '');
    if (question.type !== 'A' && question.type !== 'AAAA') return reply('REFUSED');
    if (!this.names.mayResolve(name)) return reply('REFUSED');
    let addresses: string[];
    try {
      addresses = await this.names.addresses(name);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      return reply(code === 'ENOTFOUND' ? 'NXDOMAIN' : 'SERVFAIL');
    }
    // Every address was of a kind no rule names (loopback, metadata…): refused, not empty.
    if (addresses.length === 0) return reply('REFUSED');
    const wanted = addresses
      .filter((address) => (question.type === 'A' ? isIPv4(address) : isIPv6(address)))
      .slice(0, MAX_ANSWERS);
    this.names.noteAnswer(name, wanted, TTL * 1000);
    return reply(
      'NOERROR',
      wanted.map((address) => ({
        type: question.type as 'A' | 'AAAA',
        name: question.name,
        ttl: TTL,
        data: address,
      })),
    );
  }

  /** Answers the datagrams arriving on `socket`, each to its sender. */
  serveUdp(socket: UdpSocket): void {
    socket.on('message', (message: Buffer, from: RemoteInfo) => {
      void this.answer(message).then(
        (reply) => {
          if (reply !== null) socket.send(reply, from.port, from.address);
        },
        () => {},
      );
    });
  }

  /** Answers the queries of a TCP connection (two-byte length prefixes, RFC 1035 §4.2.2), in order. */
  serveTcp(socket: Socket): void {
    let buffered = Buffer.alloc(0);
    let queue = Promise.resolve();
    socket.setTimeout(30_000, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length > MAX_TCP_QUERY + 2 && buffered.readUInt16BE(0) > MAX_TCP_QUERY) {
        socket.destroy();
        return;
      }
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const length = buffered.readUInt16BE(0);
        const query = buffered.subarray(2, 2 + length);
        buffered = buffered.subarray(2 + length);
        queue = queue.then(async () => {
          const reply = await this.answer(Buffer.from(query)).catch(() => null);
          if (reply === null || socket.destroyed) return;
          const prefix = Buffer.alloc(2);
          prefix.writeUInt16BE(reply.length);
          socket.write(Buffer.concat([prefix, reply]));
        });
      }
    });
  }
}
