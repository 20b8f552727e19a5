// A peer process of the HTTP proxy benchmarks (http.mjs, http-sandbox.mjs):
// `upstream [NAME]` runs an HTTP, an HTTPS and an HTTP/2-only (TLS) server
// (a certificate for NAME, default bench.test) answering 64 bytes; `proxy` runs an HttpProxy
// (as a supervisor would own it) behind a listener standing for the
// connect redirect. Each prints its ports as one JSON line.
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import { createServer } from 'node:net';
import { CertificateAuthority, HttpProxy, HttpRules, LeafCache, Names } from '@sandlock/http';

const [mode, ...args] = process.argv.slice(2);
const BODY = Buffer.alloc(64, 'x');
const answer = (_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length });
  res.end(BODY);
};
const listen = (server, address, port = 0) =>
  new Promise((resolve) => server.listen(port, address, () => resolve(server.address().port)));

if (mode === 'upstream') {
  const ca = await CertificateAuthority.ephemeral('bench upstream CA');
  const leaf = await new LeafCache(ca).get(args[0] ?? 'bench.test');
  const plain = await listen(http.createServer({ keepAliveTimeout: 60_000 }, answer), '127.0.0.1');
  const secure = await listen(
    https.createServer({ ...leaf, keepAliveTimeout: 60_000 }, answer),
    '127.0.0.1',
  );
  const h2Server = http2.createSecureServer(leaf);
  h2Server.on('stream', (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'text/plain' });
    stream.end(BODY);
  });
  const h2 = await listen(h2Server, '127.0.0.1');
  console.log(JSON.stringify({ plain, secure, h2, ca: ca.certificatePem }));
} else if (mode === 'proxy') {
  const [plain, secure, upstreamCa] = [Number(args[0]), Number(args[1]), args[2]];
  // A path rule: HTTPS to bench.test is intercepted.
  const rules = new HttpRules({
    httpAllow: ['GET bench.test/**', 'GET bench.test/x/*'],
    httpDeny: [],
    httpAuth: [],
  });
  const names = new Names({ net: null, http: rules, lookup: async () => ['127.0.0.1'] });
  const proxy = new HttpProxy({ rules, names, upstreamCa });
  const redirect = (port) =>
    createServer((socket) => proxy.handle(socket, { address: '127.0.0.1', port }));
  await listen(redirect(plain), '127.0.0.3', plain);
  await listen(redirect(secure), '127.0.0.3', secure);
  console.log(JSON.stringify({ ca: await proxy.caCertificate() }));
} else {
  console.error('usage: http-peer.mjs upstream [NAME] | proxy PLAIN SECURE UPSTREAM_CA');
  process.exit(2);
}
