// HTTP rules and wildcard network rules against servers on addresses that
// are not loopback, in network namespaces the test makes (network-lab.ts):
// names resolved by the sandbox's own DNS (its supervisor), connects to the
// ports of a wildcard rule checked by name in the proxy, and the attacks of
// issue #18 that need a real network.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePki, type TestPki } from '../../../packages/http/test/helpers.js';
import type { CliResult } from './helpers.js';
import { LAB, Lab, labUnavailable } from './network-lab.js';

const unavailable = labUnavailable();
if (unavailable !== null) console.warn(`HTTP lab tests skipped: ${unavailable}`);

const SERVERS = fileURLToPath(new URL('./fixtures/lab-http.mjs', import.meta.url));
const DNS_QUERY = fileURLToPath(new URL('./fixtures/dns-query.py', import.meta.url));
/** Sends its argument (`|` for CRLF) in one write to api.allowed.test:80; prints each status line back. */
const RAW = fileURLToPath(new URL('./fixtures/raw-http.py', import.meta.url));
const GRPC_CLIENT = fileURLToPath(new URL('./fixtures/lab-grpc-client.mjs', import.meta.url));
const TCP_CLIENT = fileURLToPath(new URL('./fixtures/lab-tcp.py', import.meta.url));
/** What the gRPC client in the sandbox loads: the fixtures, and @grpc/grpc-js where pnpm put it. */
const GRPC_READS = [
  fileURLToPath(new URL('./fixtures', import.meta.url)),
  fileURLToPath(new URL('../node_modules', import.meta.url)),
  fileURLToPath(new URL('../../../node_modules/.pnpm', import.meta.url)),
];

const NAMES = {
  'api.allowed.test': [LAB.allowed],
  'git.allowed.test': [LAB.allowed],
  'grpc.allowed.test': [LAB.allowed],
  'db.allowed.test': [LAB.allowed],
  'local.allowed.test': ['127.0.0.1'],
  'meta.allowed.test': ['169.254.169.254'],
  'other.test': [LAB.denied],
  'db.denied.test': [LAB.denied],
};

/** Waits for `condition`; the deadline only catches hangs. */
async function until(condition: () => boolean): Promise<void> {
  const end = Date.now() + 20_000;
  while (!condition()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

interface Served {
  scheme: string;
  address: string;
  method: string;
  host: string;
  url: string;
}

describe.skipIf(unavailable !== null)('HTTP policy in a lab of two namespaces', () => {
  let lab: Lab;
  let pki: TestPki;
  let gitRoot: string;
  let servers: ChildProcess;
  const served: Served[] = [];

  beforeAll(async () => {
    lab = await Lab.create(NAMES);
    pki = makePki([
      'api.allowed.test',
      'git.allowed.test',
      'grpc.allowed.test',
      'db.allowed.test',
      LAB.allowed,
    ]);
    // A bare repository with one commit, served by git http-backend.
    gitRoot = mkdtempSync(join(tmpdir(), 'sandlock-git-'));
    const git = (...args: string[]) =>
      execFileSync('git', args, {
        cwd: gitRoot,
        stdio: 'pipe',
        env: {
          ...process.env,
          GIT_AUTHOR_NAME: 't',
          GIT_AUTHOR_EMAIL: 't@t',
          GIT_COMMITTER_NAME: 't',
          GIT_COMMITTER_EMAIL: 't@t',
        },
      });
    git('init', '-q', '-b', 'main', 'work');
    execFileSync('sh', ['-c', 'echo "hello from git" > work/README'], { cwd: gitRoot });
    git('-C', 'work', 'add', 'README');
    git('-C', 'work', 'commit', '-q', '-m', 'one');
    git('clone', '-q', '--bare', 'work', 'repo.git');
    // The server would take a push: only the proxy's rules refuse it.
    git('-C', 'repo.git', 'config', 'http.receivepack', 'true');
    servers = spawn(
      'ip',
      [
        'netns',
        'exec',
        lab.server,
        process.execPath,
        SERVERS,
        JSON.stringify({
          addresses: [LAB.allowed, LAB.denied],
          cert: pki.cert,
          key: pki.key,
          gitRoot,
        }),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error('the lab HTTP servers did not start')),
        20_000,
      );
      createInterface({ input: servers.stdout! }).on('line', (line) => {
        const event = JSON.parse(line) as Served | { ready: true };
        if ('ready' in event) {
          clearTimeout(timer);
          resolve();
        } else served.push(event);
      });
    });
  }, 60_000);
  afterAll(() => {
    servers?.kill('SIGKILL');
    lab?.close();
    pki?.remove();
    if (gitRoot) rmSync(gitRoot, { recursive: true, force: true });
  });

  /** `sandlock run --verbose --system -r <pki> FLAGS -- sh -c SCRIPT` in the client namespace; the proxy trusts the test CA. */
  function run(flags: string[], script: string): CliResult {
    const before = process.env.NODE_EXTRA_CA_CERTS;
    process.env.NODE_EXTRA_CA_CERTS = pki.caPath;
    try {
      return lab.sandlock([
        'run',
        '--verbose',
        '--system',
        '-r',
        pki.dir,
        '-r',
        DNS_QUERY,
        '-r',
        RAW,
        '-r',
        TCP_CLIENT,
        ...GRPC_READS.flatMap((path) => ['-r', path]),
        ...flags,
        '--',
        'sh',
        '-c',
        script,
      ]);
    } finally {
      if (before === undefined) delete process.env.NODE_EXTRA_CA_CERTS;
      else process.env.NODE_EXTRA_CA_CERTS = before;
    }
  }

  const refusals = (result: CliResult) =>
    result.stderr.split('\n').filter((line) => line.startsWith('sandlock: refused'));

  it('a wildcard rule: names beneath it resolve and connect; other names, other addresses and special addresses do not', async () => {
    served.length = 0;
    const curl = (args: string) => `out=$(curl -s -m 20 ${args}); echo "$out [$?]"`;
    const result = run(
      // The lab's addresses are private (10.77.0.0/24): a name resolving
      // to one is refused unless a rule names the address.
      ['--net-allow', '*.allowed.test:80,443', '--net-allow', `${LAB.allowed}:80,443`],
      [
        curl('http://api.allowed.test/plain'),
        curl(`--cacert ${pki.caPath} https://api.allowed.test/tls`),
        `SSL_CERT_FILE=${pki.caPath} python3 -c 'import urllib.request; print(urllib.request.urlopen("https://api.allowed.test/python").read().decode().strip())'`,
        `NODE_EXTRA_CA_CERTS=${pki.caPath} ${process.execPath} -e 'fetch("https://api.allowed.test/node").then((r) => r.text()).then((t) => console.log(t.trim()))'`,
        // Not beneath the wildcard: not resolved, and refused by name when dialled.
        curl('http://other.test/unresolved'),
        curl(`--resolve other.test:80:${LAB.denied} http://other.test/by-address`),
        // An allowed name, dialled at an address it does not have.
        curl(`--resolve api.allowed.test:80:${LAB.denied} http://api.allowed.test/elsewhere`),
        // Names whose DNS answer is loopback or the metadata address.
        curl('http://local.allowed.test/loopback'),
        curl('--resolve local.allowed.test:80:127.0.0.1 http://local.allowed.test/loopback'),
        curl('--resolve meta.allowed.test:80:169.254.169.254 http://meta.allowed.test/metadata'),
        // TLS: a server name no rule allows, at an allowed address; no name,
        // to an address a rule allows and to one no rule allows.
        curl(
          `--cacert ${pki.caPath} --resolve other.test:443:${LAB.allowed} https://other.test/sni`,
        ),
        curl(`--cacert ${pki.caPath} https://${LAB.allowed}/bare-ip`),
        curl(`--cacert ${pki.caPath} https://${LAB.denied}/bare-ip`),
        // The DNS: A for an allowed name; TXT of it, a name beneath no rule, a metadata answer: REFUSED.
        `python3 ${DNS_QUERY} api.allowed.test:1:udp api.allowed.test:16:udp api.allowed.test:16:tcp 6578666696c.other.test:1:udp meta.allowed.test:1:tcp`,
        // CONNECT to an arbitrary host, through an allowed name's connection.
        `python3 ${RAW} "CONNECT ${LAB.denied}:80 HTTP/1.1|Host: ${LAB.denied}:80||"`,
        // Smuggling: two requests in one packet, the second for a name no
        // rule allows; Content-Length with Transfer-Encoding.
        `python3 ${RAW} "GET /one HTTP/1.1|Host: api.allowed.test||GET /two HTTP/1.1|Host: other.test||"`,
        `python3 ${RAW} "POST /three HTTP/1.1|Host: api.allowed.test|Content-Length: 5|Transfer-Encoding: chunked||0||"`,
      ].join('\n'),
    );
    expect(result.stdout.split('\n')).toEqual([
      `http ${LAB.allowed} api.allowed.test /plain [0]`,
      `https ${LAB.allowed} api.allowed.test /tls [0]`,
      `https ${LAB.allowed} api.allowed.test /python`,
      `https ${LAB.allowed} api.allowed.test /node`,
      ' [6]',
      `sandlock: GET other.test/by-address refused: other.test (${LAB.denied}:80) is allowed by no --net-allow rule [0]`,
      `sandlock: GET api.allowed.test/elsewhere refused: api.allowed.test does not name the address dialled (${LAB.denied}) [0]`,
      ' [6]',
      'sandlock: GET local.allowed.test/loopback refused: local.allowed.test does not name the address dialled (127.0.0.1) [0]',
      'sandlock: GET meta.allowed.test/metadata refused: meta.allowed.test does not name the address dialled (169.254.169.254) [0]',
      ' [35]',
      `https ${LAB.allowed} ${LAB.allowed} /bare-ip [0]`,
      ' [35]',
      'api.allowed.test 1 udp rcode=0 answers=1',
      'api.allowed.test 16 udp rcode=5 answers=0',
      'api.allowed.test 16 tcp rcode=5 answers=0',
      '6578666696c.other.test 1 udp rcode=5 answers=0',
      'meta.allowed.test 1 tcp rcode=5 answers=0',
      'HTTP/1.1 403 Forbidden',
      'HTTP/1.1 200 OK',
      'HTTP/1.1 403 Forbidden',
      'HTTP/1.1 400 Bad Request',
      '',
    ]);
    expect(refusals(result)).toEqual([
      `sandlock: refused: GET other.test/by-address (other.test (${LAB.denied}:80) is allowed by no --net-allow rule)`,
      `sandlock: refused: GET api.allowed.test/elsewhere (api.allowed.test does not name the address dialled (${LAB.denied}))`,
      'sandlock: refused: GET local.allowed.test/loopback (local.allowed.test does not name the address dialled (127.0.0.1))',
      'sandlock: refused: GET meta.allowed.test/metadata (meta.allowed.test does not name the address dialled (169.254.169.254))',
      `sandlock: refused: connection to other.test (other.test does not name the address dialled (${LAB.allowed}))`,
      `sandlock: refused: connection to ${LAB.denied} (TLS without a server name (SNI) to ${LAB.denied}: ${LAB.denied} (${LAB.denied}:443) is allowed by no --net-allow rule)`,
      `sandlock: refused: CONNECT ${LAB.denied}:80 (CONNECT is not proxied)`,
      `sandlock: refused: GET other.test/two (other.test does not name the address dialled (${LAB.allowed}))`,
      `sandlock: refused: connection to ${LAB.allowed}:80 (malformed HTTP request (HPE_INVALID_TRANSFER_ENCODING))`,
    ]);
    // Only the allowed requests reached a server (reported in order; the
    // lines are read once the synchronous run has returned).
    await until(() => served.some((request) => request.url === '/one'));
    expect(served.map((request) => `${request.address} ${request.url}`)).toEqual([
      `${LAB.allowed} /plain`,
      `${LAB.allowed} /tls`,
      `${LAB.allowed} /python`,
      `${LAB.allowed} /node`,
      `${LAB.allowed} /bare-ip`,
      `${LAB.allowed} /one`,
    ]);
  }, 120_000);

  it('a wildcard --net-deny without ports: names beneath it do not resolve; other TCP goes direct, by address', async () => {
    served.length = 0;
    const curl = (args: string) => `out=$(curl -s -m 20 ${args}); echo "$out [$?]"`;
    const result = run(
      ['--net-deny', '*.denied.test'],
      [
        curl('http://db.denied.test/unresolved'),
        `python3 ${DNS_QUERY} db.denied.test:1:udp db.denied.test:1:tcp`,
        // Not through the proxy: a Host naming no address of the server's is not its business.
        curl(`-H 'Host: anything.test' http://${LAB.allowed}/direct`),
        // An address no one resolved for the sandbox, given by hand: a name
        // rule cannot know it (an address rule can).
        curl(`--resolve db.denied.test:80:${LAB.denied} http://db.denied.test/unpinned`),
      ].join('\n'),
    );
    expect(result.stdout.split('\n')).toEqual([
      ' [6]',
      'db.denied.test 1 udp rcode=5 answers=0',
      'db.denied.test 1 tcp rcode=5 answers=0',
      `http ${LAB.allowed} anything.test /direct [0]`,
      `http ${LAB.denied} db.denied.test /unpinned [0]`,
      '',
    ]);
    expect(refusals(result)).toEqual([]);
    await until(() => served.some((request) => request.url === '/unpinned'));
    expect(served.map((request) => request.url)).toEqual(['/direct', '/unpinned']);
  }, 120_000);

  it('a wildcard --net-deny with ports, and a name beneath it that a rule names: checked by name on those ports, its addresses refused', async () => {
    served.length = 0;
    const curl = (args: string) => `out=$(curl -s -m 20 ${args}); echo "$out [$?]"`;
    const result = run(
      // db.denied.test, named by an HTTP rule, is resolved at start: its
      // address is the wildcard's, refused with or without a name.
      [
        '--net-deny',
        '*.denied.test:80',
        '--net-deny',
        '*.denied.test',
        '--http-deny',
        '* db.denied.test/admin/**',
      ],
      [
        curl(`--resolve other.denied.test:80:${LAB.allowed} http://other.denied.test/by-name`),
        curl(`http://${LAB.denied}/by-address`),
        curl(`--cacert ${pki.caPath} https://${LAB.denied}/bare-ip`),
        curl(`http://${LAB.allowed}/allowed`),
      ].join('\n'),
    );
    expect(result.stdout.split('\n')).toEqual([
      `sandlock: GET other.denied.test/by-name refused: other.denied.test (${LAB.allowed}:80) is denied by --net-deny [0]`,
      `sandlock: GET ${LAB.denied}/by-address refused: ${LAB.denied} (${LAB.denied}:80) is denied by --net-deny [0]`,
      ' [35]',
      `http ${LAB.allowed} ${LAB.allowed} /allowed [0]`,
      '',
    ]);
    expect(refusals(result)).toEqual([
      `sandlock: refused: GET other.denied.test/by-name (other.denied.test (${LAB.allowed}:80) is denied by --net-deny)`,
      `sandlock: refused: GET ${LAB.denied}/by-address (${LAB.denied} (${LAB.denied}:80) is denied by --net-deny)`,
      `sandlock: refused: connection to ${LAB.denied} (TLS without a server name (SNI) to ${LAB.denied}: ${LAB.denied} (${LAB.denied}:443) is denied by --net-deny)`,
    ]);
    await until(() => served.some((request) => request.url === '/allowed'));
    expect(served.map((request) => request.url)).toEqual(['/allowed']);
  }, 120_000);

  it('git clones over HTTPS through an allow-list, and cannot push', async () => {
    served.length = 0;
    const clone = mkdtempSync(join(tmpdir(), 'sandlock-clone-'));
    try {
      const result = run(
        [
          '-w',
          clone,
          '--net-allow',
          '*.allowed.test:443',
          '--net-allow',
          `${LAB.allowed}:443`,
          '--http-allow',
          'GET git.allowed.test/git/repo.git/**',
          '--http-allow',
          'POST git.allowed.test/git/repo.git/git-upload-pack',
        ],
        [
          `cd ${clone} && export HOME=${clone} GIT_CONFIG_NOSYSTEM=1`,
          'git clone -q https://git.allowed.test/git/repo.git repo && cat repo/README',
          'cd repo && echo more >> README && git -c user.name=t -c user.email=t@t commit -qam two',
          // git says "error: 403" and "returned error: 403".
          'git push -q origin main 2>&1 | grep -o "403"',
        ].join('\n'),
      );
      expect({ stdout: result.stdout, stderr: result.stderr }).toEqual({
        stdout: 'hello from git\n403\n403\n',
        stderr:
          'sandlock: refused: POST git.allowed.test/git/repo.git/git-receive-pack (allowed by no --http-allow rule)\n',
      });
      await until(() => served.some((request) => request.url.endsWith('/git-upload-pack')));
      await until(() => served.some((request) => request.url.includes('git-receive-pack')));
      // The push asked for the refs (allowed), its POST never arrived.
      expect(served.filter((request) => request.method === 'POST').map((r) => r.url)).toEqual([
        '/git/repo.git/git-upload-pack',
      ]);
    } finally {
      rmSync(clone, { recursive: true, force: true });
    }
  }, 120_000);
  it('HTTP/2 goes on as HTTP/2: an h2-only server (curl, Node), h2c, and gRPC unary and bidirectional streaming; a denied gRPC method gets PERMISSION_DENIED', async () => {
    served.length = 0;
    const bundle = '/etc/ssl/certs/ca-certificates.crt';
    const node = `const h=require("http2"),fs=require("fs");const s=h.connect("https://api.allowed.test:8443",{ca:fs.readFileSync("${bundle}")});const r=s.request({":path":"/h2/node"});let b="";r.setEncoding("utf8");r.on("data",d=>b+=d);r.on("end",()=>{process.stdout.write(b);s.close()})`;
    const result = run(
      [
        '--net-allow',
        '*.allowed.test:8443,8081,50051',
        // A rule naming the lab's (private) address lets the DNS answer it.
        '--net-allow',
        `${LAB.allowed}:443`,
        '--http-allow',
        'GET api.allowed.test/h2/**',
        '--http-allow',
        'POST grpc.allowed.test/lab.Lab/*',
      ],
      [
        `curl -s -m 20 --http2 -w '%{http_version}\\n' https://api.allowed.test:8443/h2/curl`,
        `curl -s -m 20 --http2 https://api.allowed.test:8443/other`,
        `curl -s -m 20 --http2-prior-knowledge http://api.allowed.test:8081/h2/c`,
        `${process.execPath} -e '${node}'`,
        `${process.execPath} ${GRPC_CLIENT} grpc.allowed.test:50051 ${bundle}`,
      ].join('\n'),
    );
    expect(result.stdout.split('\n')).toEqual([
      `h2 ${LAB.allowed} api.allowed.test:8443 /h2/curl`,
      '2',
      'sandlock: GET api.allowed.test/other refused: allowed by no --http-allow rule',
      `h2c ${LAB.allowed} api.allowed.test:8081 /h2/c`,
      `h2 ${LAB.allowed} api.allowed.test:8443 /h2/node`,
      `echo ${LAB.allowed} one`,
      'chat a, chat b, chat c',
      'PERMISSION_DENIED sandlock: POST grpc.allowed.test/lab.Admin/Drop refused: allowed by no --http-allow rule',
      '',
    ]);
    expect(refusals(result)).toEqual([
      'sandlock: refused: GET api.allowed.test/other (allowed by no --http-allow rule)',
      'sandlock: refused: POST grpc.allowed.test/lab.Admin/Drop (allowed by no --http-allow rule)',
    ]);
    await until(() => served.some((request) => request.url === '/lab.Lab/Chat'));
    expect(served.map((request) => `${request.scheme} ${request.url}`)).toEqual([
      'h2 /h2/curl',
      'h2c /h2/c',
      'h2 /h2/node',
      'grpc /lab.Lab/Echo',
      'grpc /lab.Lab/Chat',
    ]);
  }, 120_000);

  it('a wildcard rule on ports that are not HTTP: allowed to addresses the sandbox DNS (UDP or TCP) answered for names beneath it, TLS by its server name', async () => {
    served.length = 0;
    const tcp = (...steps: string[]) => `python3 ${TCP_CLIENT} ${steps.join(' ')}`;
    const result = run(
      ['--net-allow', '*.allowed.test:5432,6443', '--net-allow', `${LAB.allowed}:443`],
      [
        // No DNS answer gave the address yet, no address rule allows it: refused.
        tcp('first', LAB.allowed),
        // DNS over TCP only: a client of its own, and glibc told to use TCP (resolv.conf's use-vc).
        `python3 ${DNS_QUERY} db.allowed.test:1:tcp other.test:1:tcp db.allowed.test:16:tcp`,
        `RES_OPTIONS=use-vc getent hosts db.allowed.test | awk '{print $1, $2}'`,
        'RES_OPTIONS=use-vc getent hosts other.test; echo "[$?]"',
        // The server speaks first; the client speaks first; an address no answer gave.
        tcp('banner', 'db.allowed.test', 'first', 'db.allowed.test', 'first', LAB.denied),
        // TLS that is not HTTP: a name beneath the rule, and one that is not.
        tcp('tls', 'db.allowed.test', 'db.allowed.test', pki.caPath),
        tcp('tls', LAB.allowed, 'other.test', pki.caPath),
      ].join('\n'),
    );
    expect(result.stdout.split('\n')).toEqual([
      'first ',
      'db.allowed.test 1 tcp rcode=0 answers=1',
      'other.test 1 tcp rcode=5 answers=0',
      'db.allowed.test 16 tcp rcode=5 answers=0',
      `${LAB.allowed} db.allowed.test`,
      '[2]',
      `banner 220 ${LAB.allowed} / HELLO`,
      `first 220 ${LAB.allowed}`,
      'first ',
      'tls tls:hi',
      'tls failed',
      '',
    ]);
    expect(refusals(result)).toEqual([
      `sandlock: refused: connection to ${LAB.allowed}:5432 (neither TLS nor HTTP, judged by its address: ${LAB.allowed}:5432 is allowed by no --net-allow rule by its address (a name rule needs TLS or HTTP to see the name))`,
      `sandlock: refused: connection to ${LAB.denied}:5432 (neither TLS nor HTTP, judged by its address: ${LAB.denied}:5432 is allowed by no --net-allow rule by its address (a name rule needs TLS or HTTP to see the name))`,
      `sandlock: refused: connection to other.test (other.test (${LAB.allowed}:6443) is allowed by no --net-allow rule)`,
    ]);
    await until(() => served.some((request) => request.scheme === 'tls'));
    expect(served.map((request) => `${request.scheme} ${request.address}`)).toEqual([
      `tcp ${LAB.allowed}`,
      `tcp ${LAB.allowed}`,
      `tls ${LAB.allowed}`,
    ]);
  }, 120_000);
});
