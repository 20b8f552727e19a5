import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { type AddressInfo, connect, createServer, type Server } from 'node:net';
import * as packet from 'dns-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DnsOutcome, HttpRules, Names, SandboxDns } from '../src/index.js';
import { lookupOf, netView } from './helpers.js';

// The names "upstream" knows (a lookup given to Names: no real resolver is asked).
const upstream = {
  'registry.npmjs.test': ['104.16.1.1', '2606:4700::1'],
  'npmjs.test': ['104.16.9.9'],
  'api.example.test': ['93.184.216.34'],
  'loop.npmjs.test': ['127.0.0.1'],
  'meta.npmjs.test': ['169.254.169.254'],
  'mixed.npmjs.test': ['10.1.2.3', '104.16.2.2'],
  'db.internal.test': ['10.9.9.9'],
  'localhost.test': ['127.0.0.1'],
};
const asked: string[] = [];
const outcomes: DnsOutcome[] = [];

const rules = new HttpRules({
  httpAllow: ['GET api.example.test/v1/**'],
  httpDeny: [],
  httpAuth: [],
});
const names = new Names({
  net: netView(
    ['*.npmjs.test:443', 'db.internal.test:5432', 'localhost.test:8080', '10.9.0.0/16:5432'],
    {},
  ),
  http: rules,
  lookup: async (name) => {
    asked.push(name);
    return lookupOf(upstream)(name);
  },
});
const dns = new SandboxDns(names, (outcome) => outcomes.push(outcome));

let udp: UdpSocket;
let tcp: Server;

beforeAll(async () => {
  udp = createSocket('udp4');
  dns.serveUdp(udp);
  await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
  tcp = createServer((socket) => dns.serveTcp(socket));
  await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  udp?.close();
  await new Promise<void>((resolve) => (tcp ? tcp.close(() => resolve()) : resolve()));
});

let nextId = 1;
function query(name: string, type: string): Buffer {
  return packet.encode({
    id: nextId++,
    type: 'query',
    flags: packet.RECURSION_DESIRED,
    questions: [{ type: type as packet.RecordType, name, class: 'IN' }],
  });
}

function overUdp(message: Buffer): Promise<packet.Packet> {
  return new Promise((resolve, reject) => {
    const client = createSocket('udp4');
    const timer = setTimeout(() => {
      client.close();
      reject(new Error('no UDP answer'));
    }, 20_000);
    client.on('message', (reply) => {
      clearTimeout(timer);
      client.close();
      resolve(packet.decode(reply));
    });
    client.send(message, (udp.address() as AddressInfo).port, '127.0.0.1');
  });
}

function overTcp(messages: Buffer[]): Promise<packet.Packet[]> {
  return new Promise((resolve, reject) => {
    const socket = connect((tcp.address() as AddressInfo).port, '127.0.0.1');
    let buffered = Buffer.alloc(0);
    const replies: packet.Packet[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no TCP answer'));
    }, 20_000);
    socket.on('connect', () => {
      // All queries in one write, the last split in two: framing is by length only.
      const framed = Buffer.concat(
        messages.map((m) => Buffer.concat([Buffer.from([m.length >> 8, m.length & 255]), m])),
      );
      socket.write(framed.subarray(0, framed.length - 3));
      setImmediate(() => socket.write(framed.subarray(framed.length - 3)));
    });
    socket.on('data', (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        replies.push(packet.decode(buffered.subarray(2, 2 + buffered.readUInt16BE(0))));
        buffered = buffered.subarray(2 + buffered.readUInt16BE(0));
      }
      if (replies.length === messages.length) {
        clearTimeout(timer);
        socket.destroy();
        resolve(replies);
      }
    });
    socket.on('error', reject);
  });
}

const rcode = (reply: packet.Packet) => (reply as { rcode?: string }).rcode;
const data = (reply: packet.Packet) =>
  (reply.answers ?? []).map((answer) => (answer as { data: string }).data);

describe("the sandbox's DNS", () => {
  it('answers A and AAAA for names a rule allows, over UDP', async () => {
    const a = await overUdp(query('Registry.NPMjs.test', 'A'));
    expect(rcode(a)).toBe('NOERROR');
    expect(data(a)).toEqual(['104.16.1.1']);
    expect(a.questions?.[0]?.name).toBe('Registry.NPMjs.test');
    expect(a.flags! & packet.RECURSION_DESIRED).toBeTruthy();
    expect(data(await overUdp(query('registry.npmjs.test', 'AAAA')))).toEqual(['2606:4700::1']);
    // A name of an HTTP rule; an exact net rule's name.
    expect(data(await overUdp(query('api.example.test', 'A')))).toEqual(['93.184.216.34']);
    expect(data(await overUdp(query('db.internal.test', 'A')))).toEqual(['10.9.9.9']);
  });

  it('refuses names no rule allows, without asking anyone', async () => {
    asked.length = 0;
    for (const name of [
      'npmjs.test',
      'evil.test',
      'registry.npmjs.test.evil.test',
      'example.test',
    ]) {
      expect(rcode(await overUdp(query(name, 'A'))), name).toBe('REFUSED');
    }
    expect(asked).toEqual([]);
  });

  it('refuses TXT and every other type, even for allowed names', async () => {
    asked.length = 0;
    for (const type of ['TXT', 'MX', 'ANY', 'CNAME', 'NULL', 'SRV'] as const) {
      const reply = await overUdp(query('aGVsbG8.registry.npmjs.test', type));
      expect(rcode(reply), type).toBe('REFUSED');
      expect(reply.answers, type).toEqual([]);
    }
    expect(asked).toEqual([]);
  });

  it('refuses loopback, link-local and metadata answers unless a rule names them', async () => {
    expect(rcode(await overUdp(query('loop.npmjs.test', 'A')))).toBe('REFUSED');
    expect(rcode(await overUdp(query('meta.npmjs.test', 'A')))).toBe('REFUSED');
    // A private address is left out, a public one given.
    expect(data(await overUdp(query('mixed.npmjs.test', 'A')))).toEqual(['104.16.2.2']);
    // Named exactly by a rule (localhost.test:8080), or its range by one (10.9.0.0/16).
    expect(data(await overUdp(query('localhost.test', 'A')))).toEqual(['127.0.0.1']);
    expect(data(await overUdp(query('db.internal.test', 'A')))).toEqual(['10.9.9.9']);
  });

  it('answers over TCP, several queries on one connection, in order', async () => {
    const replies = await overTcp([
      query('registry.npmjs.test', 'A'),
      query('evil.test', 'A'),
      query('registry.npmjs.test', 'TXT'),
    ]);
    expect(replies.map(rcode)).toEqual(['NOERROR', 'REFUSED', 'REFUSED']);
    expect(data(replies[0]!)).toEqual(['104.16.1.1']);
  });

  it('answers malformed queries with FORMERR and does not fall over', async () => {
    const garbage = Buffer.from('0123456789abcdefghij');
    const reply = await dns.answer(garbage);
    expect(reply).not.toBeNull();
    expect(reply!.readUInt16BE(0)).toBe(garbage.readUInt16BE(0));
    expect(reply![3]! & 0x0f).toBe(1);
    expect(await dns.answer(Buffer.from([1, 2]))).toBeNull();
    const two = packet.encode({
      id: 9,
      type: 'query',
      questions: [
        { type: 'A', name: 'registry.npmjs.test' },
        { type: 'A', name: 'evil.test' },
      ],
    });
    expect(rcode(packet.decode((await dns.answer(two))!))).toBe('FORMERR');
    expect(outcomes.some((o) => o.rcode === 'FORMERR')).toBe(true);
  });
});
