'use strict';
// STS for the tests: moto's server (`moto[server]` from PyPI, in ./.venv) on a loopback port,
// behind a loopback proxy that counts the STS calls by Action, remembers the secrets of the
// credentials moto hands out (so tokens signed with them can be verified), and can inject
// faults: HTTP 500, 400 Throttling, malformed XML, or no answer at all.

const http = require('node:http');
const net = require('node:net');
const path = require('node:path');
const fs = require('node:fs');
const { spawn, execFileSync } = require('node:child_process');

const ROOT = path.join(__dirname, '..', '..');
const VENV = path.join(ROOT, '.venv');
const PYTHON = path.join(VENV, 'bin', 'python');

/** Creates ./.venv with moto[server] unless it already imports (CI does this in .ci/run). */
function ensureMoto() {
  try {
    execFileSync(PYTHON, ['-c', 'import moto.server'], { stdio: 'ignore' });
    return;
  } catch {
    // not installed yet
  }
  if (!fs.existsSync(PYTHON)) execFileSync('python3', ['-m', 'venv', VENV], { stdio: 'inherit' });
  execFileSync(PYTHON, ['-m', 'pip', 'install', '--quiet', 'moto[server]'], { stdio: 'inherit' });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitFor(port, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/moto-api/' }, (res) => {
        res.resume();
        resolve(true);
      });
      req.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error('moto server did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
}

const FAULTS = {
  500: (res) => {
    res.writeHead(500, { 'content-type': 'text/xml' });
    res.end('<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code><Message>The request processing has failed</Message></Error><RequestId>r1</RequestId></ErrorResponse>');
  },
  throttle: (res) => {
    res.writeHead(400, { 'content-type': 'text/xml' });
    res.end('<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>r2</RequestId></ErrorResponse>');
  },
  malformed: (res) => {
    res.writeHead(200, { 'content-type': 'text/xml' });
    res.end('<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>oops');
  },
  garbage: (res) => {
    res.writeHead(200, { 'content-type': 'text/xml' });
    res.end('this is not XML at all');
  },
  hang: () => {},
};

class StsStandIn {
  constructor() {
    this.calls = [];
    this.secrets = new Map();
    this.fault = null;
    this.hanging = [];
  }

  async start() {
    ensureMoto();
    this.motoPort = await freePort();
    this.moto = spawn(PYTHON, ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(this.motoPort)], {
      stdio: 'ignore',
    });
    await waitFor(this.motoPort, 30000);
    this.server = http.createServer((req, res) => this.handle(req, res));
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${this.server.address().port}`;
    return this;
  }

  /** Number of calls of `action` seen (all actions without an argument). */
  count(action) {
    return action ? this.calls.filter((c) => c.action === action).length : this.calls.length;
  }

  reset() {
    this.calls.length = 0;
    this.fault = null;
  }

  handle(req, res) {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const params = Object.fromEntries(new URLSearchParams(body));
      const auth = req.headers.authorization || '';
      const signedBy = (/Credential=([^/]+)\//.exec(auth) || [])[1];
      this.calls.push({ action: params.Action, params, signedBy, region: (/Credential=[^/]+\/\d+\/([^/]+)\//.exec(auth) || [])[1] });
      if (this.fault) {
        if (this.fault === 'hang') this.hanging.push(res);
        FAULTS[this.fault](res);
        return;
      }
      const upstream = http.request(
        { host: '127.0.0.1', port: this.motoPort, method: req.method, path: req.url, headers: req.headers },
        (up) => {
          const out = [];
          up.on('data', (c) => out.push(c));
          up.on('end', () => {
            const text = Buffer.concat(out).toString('utf8');
            const key = /<AccessKeyId>([^<]+)<\/AccessKeyId>/.exec(text);
            const secret = /<SecretAccessKey>([^<]+)<\/SecretAccessKey>/.exec(text);
            if (key && secret) this.secrets.set(key[1], secret[1]);
            res.writeHead(up.statusCode, up.headers);
            res.end(text);
          });
        },
      );
      upstream.on('error', (e) => {
        res.writeHead(502);
        res.end(String(e));
      });
      upstream.end(body);
    });
  }

  async stop() {
    for (const res of this.hanging) res.destroy();
    if (this.server) {
      this.server.closeAllConnections();
      await new Promise((resolve) => this.server.close(resolve));
    }
    if (this.moto) {
      const exited = new Promise((resolve) => this.moto.once('exit', resolve));
      this.moto.kill('SIGTERM');
      await exited;
    }
  }
}

module.exports = { StsStandIn, ensureMoto, freePort };
