'use strict';
// One fault-injecting loopback stand-in for every upstream. An upstream is a descriptor (see
// __test__/reliability/upstreams.js) whose `healthy(req, body, res)` answers like the real
// service; while `fault` is set, every request gets that fault instead. The same server speaks
// plain HTTP and TLS on one port (it sniffs the first byte), so a descriptor may use either.
//
// Faults: 500, throttle (429, or the descriptor's own throttling answer), malformed (a body
// that is not the expected format), truncated (the healthy body cut short, honestly framed),
// content-type (an HTML page with 200, as a captive proxy sends), huge (a 50 MB body),
// reset (RST after part of the body), silence (accept, read, never answer). Endpoint faults,
// which no server can inject, are addresses: `wrongCaUrl` (TLS with a certificate from a CA
// the client was not given) and `UNRESOLVABLE` (an `.invalid` name, RFC 6761).

const http = require('node:http');
const https = require('node:https');
const net = require('node:net');
const { createCA, issue } = require('./pki');

const RESPONSE_FAULTS = ['500', 'throttle', 'malformed', 'truncated', 'content-type', 'huge', 'reset', 'silence'];
const ENDPOINT_FAULTS = ['wrong-ca', 'dns'];
const HUGE_BYTES = 50 * 1024 * 1024;
const UNRESOLVABLE = 'upstream.invalid';

let sharedPki;
/** One CA and server certificate per process (RSA key generation is slow). */
function pki() {
  if (!sharedPki) {
    const ca = createCA('faults-test-ca');
    const wrongCa = createCA('faults-wrong-ca');
    sharedPki = {
      ca,
      server: issue(ca, { commonName: '127.0.0.1', server: true }),
      wrong: issue(wrongCa, { commonName: '127.0.0.1', server: true }),
    };
  }
  return sharedPki;
}

class FaultServer {
  /** @param {{ name: string, healthy: Function, throttle?: Function, malformed?: string }} upstream */
  constructor(upstream) {
    this.upstream = upstream;
    this.fault = null;
    this.requests = 0;
    this.faultsInjected = {};
    this.sockets = new Set();
    this.silenced = new Set();
  }

  get caPem() {
    return pki().ca.certPem;
  }

  get caData() {
    return Buffer.from(pki().ca.certPem).toString('base64');
  }

  async start() {
    const { server, wrong } = pki();
    const handler = (req, res) => this.handle(req, res);
    this.http = http.createServer(handler);
    this.https = https.createServer({ key: server.keyPem, cert: server.certPem }, handler);
    this.wrongCa = https.createServer({ key: wrong.keyPem, cert: wrong.certPem }, handler);
    for (const s of [this.http, this.https, this.wrongCa]) {
      s.on('connection', (sock) => this.track(sock));
      s.on('secureConnection', (sock) => this.track(sock));
      s.on('tlsClientError', () => {});
      s.on('clientError', (_e, sock) => sock.destroy());
    }
    // The front door: routes each connection by its first byte (0x16 starts a TLS handshake).
    this.front = net.createServer((sock) => {
      this.track(sock);
      sock.once('readable', () => {
        const head = sock.read(1);
        if (!head) return sock.destroy();
        sock.unshift(head);
        (head[0] === 0x16 ? this.https : this.http).emit('connection', sock);
      });
    });
    this.wrongFront = net.createServer((sock) => {
      this.track(sock);
      this.wrongCa.emit('connection', sock);
    });
    await Promise.all([this.front, this.wrongFront].map((s) => new Promise((r) => s.listen(0, '127.0.0.1', r))));
    this.port = this.front.address().port;
    this.httpUrl = `http://127.0.0.1:${this.port}`;
    this.httpsUrl = `https://127.0.0.1:${this.port}`;
    this.wrongCaUrl = `https://127.0.0.1:${this.wrongFront.address().port}`;
    return this;
  }

  track(sock) {
    this.sockets.add(sock);
    sock.on('error', () => {});
    sock.once('close', () => this.sockets.delete(sock));
  }

  /**
   * Sets (or clears, with null) the fault. Pooled connections stay open, as a real server's
   * do: each request meets the fault in force when it arrives. Clearing ends the requests
   * that `silence` holds.
   */
  setFault(fault) {
    if (fault !== null && !RESPONSE_FAULTS.includes(fault)) throw new Error(`unknown fault ${fault}`);
    this.fault = fault;
    if (fault === null) {
      for (const res of this.silenced) res.socket?.destroy();
      this.silenced.clear();
    }
  }

  dropConnections() {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  handle(req, res) {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      this.requests += 1;
      const body = Buffer.concat(chunks).toString('utf8');
      if (!this.fault) return this.upstream.healthy(req, body, res);
      this.faultsInjected[this.fault] = (this.faultsInjected[this.fault] ?? 0) + 1;
      this.inject(this.fault, req, body, res);
    });
  }

  healthyBody(req, body) {
    // Captures what `healthy` would have sent, to cut it short or corrupt it.
    return new Promise((resolve) => {
      const fake = {
        headers: {},
        statusCode: 200,
        writeHead(status, headers) {
          this.statusCode = status;
          Object.assign(this.headers, headers ?? {});
          return this;
        },
        setHeader(k, v) {
          this.headers[k] = v;
        },
        end(text) {
          resolve({ status: this.statusCode, headers: this.headers, text: String(text ?? '') });
        },
      };
      this.upstream.healthy(req, body, fake);
    });
  }

  async inject(fault, req, body, res) {
    const up = this.upstream;
    switch (fault) {
      case '500':
        res.writeHead(500, { 'content-type': 'text/plain' });
        return res.end('internal error');
      case 'throttle':
        if (up.throttle) return up.throttle(req, body, res);
        res.writeHead(429, { 'content-type': 'text/plain', 'retry-after': '1' });
        return res.end('Too Many Requests');
      case 'malformed': {
        const h = await this.healthyBody(req, body);
        res.writeHead(200, { 'content-type': h.headers['content-type'] ?? 'application/json' });
        return res.end(up.malformed ?? '{"not": "what was asked" <<<');
      }
      case 'truncated': {
        const h = await this.healthyBody(req, body);
        const cut = h.text.slice(0, Math.floor(h.text.length / 2));
        res.writeHead(h.status, { ...h.headers, 'content-length': Buffer.byteLength(cut) });
        return res.end(cut);
      }
      case 'content-type':
        res.writeHead(200, { 'content-type': 'text/html' });
        return res.end('<!doctype html><html><body>Please log in to the proxy</body></html>');
      case 'huge': {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': HUGE_BYTES });
        const chunk = Buffer.alloc(1 << 20, 0x61);
        let sent = 0;
        const pump = () => {
          while (sent < HUGE_BYTES) {
            sent += chunk.length;
            if (!res.write(chunk)) return res.once('drain', pump);
          }
          res.end();
        };
        res.on('error', () => {});
        return pump();
      }
      case 'reset': {
        const h = await this.healthyBody(req, body);
        res.writeHead(200, { ...h.headers, 'content-length': Buffer.byteLength(h.text) + 1000 });
        res.write(h.text.slice(0, Math.max(1, Math.floor(h.text.length / 2))));
        return setTimeout(() => {
          const sock = req.socket;
          if (typeof sock.resetAndDestroy === 'function' && sock instanceof net.Socket && !sock.encrypted) sock.resetAndDestroy();
          else sock.destroy();
        }, 20);
      }
      case 'silence':
        this.silenced.add(res);
        return undefined; // holds the request open until the client gives up
      default:
        throw new Error(`unknown fault ${fault}`);
    }
  }

  async stop() {
    this.dropConnections();
    await Promise.all(
      [this.front, this.wrongFront, this.http, this.https, this.wrongCa].map(
        (s) => new Promise((r) => (s.listening ? s.close(() => r()) : r())),
      ),
    );
  }
}

module.exports = { FaultServer, RESPONSE_FAULTS, ENDPOINT_FAULTS, UNRESOLVABLE, HUGE_BYTES, pki };
