'use strict';
// A loopback Kubernetes API server stand-in. Like a real API server it authenticates every
// request (a bearer token it knows, or a client certificate from its CA) and answers 401 with
// a Kubernetes Status otherwise. It records who made each request.

const https = require('node:https');
const { createCA, issue } = require('./pki');

class KubeApiStandIn {
  /**
   * @param {object} opts
   * @param {Record<string,string>} [opts.tokens] bearer token -> user name
   * @param {(token: string) => string | undefined} [opts.verifyToken] extra token check
   */
  constructor({ tokens = {}, verifyToken } = {}) {
    this.tokens = new Map(Object.entries(tokens));
    this.verifyToken = verifyToken;
    this.requests = [];
    this.ca = createCA('kube-api-test-ca');
    this.serverCert = issue(this.ca, { commonName: '127.0.0.1', server: true });
  }

  get caPem() {
    return this.ca.certPem;
  }

  get caData() {
    return Buffer.from(this.ca.certPem).toString('base64');
  }

  /** A client certificate this server accepts, for `user`. */
  clientCert(user, lifetimeMs) {
    return issue(this.ca, { commonName: user, lifetimeMs });
  }

  identify(req) {
    const auth = req.headers.authorization;
    if (auth && auth.startsWith('Bearer ')) {
      const token = auth.slice('Bearer '.length);
      const user = this.tokens.get(token) ?? (this.verifyToken && this.verifyToken(token));
      return user ? { user, via: 'bearer' } : undefined;
    }
    const peer = req.socket.getPeerCertificate && req.socket.getPeerCertificate();
    if (req.socket.authorized && peer && peer.subject) {
      return { user: peer.subject.CN, via: 'x509' };
    }
    return undefined;
  }

  handle(req, res) {
    const who = this.identify(req);
    const url = new URL(req.url, 'https://127.0.0.1');
    this.requests.push({
      method: req.method,
      path: url.pathname,
      user: who && who.user,
      via: who && who.via,
    });
    const send = (status, body) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (!who) {
      send(401, {
        kind: 'Status',
        apiVersion: 'v1',
        status: 'Failure',
        message: 'Unauthorized',
        reason: 'Unauthorized',
        code: 401,
      });
      return;
    }
    if (req.method === 'GET' && url.pathname === '/api/v1/namespaces') {
      send(200, {
        kind: 'NamespaceList',
        apiVersion: 'v1',
        items: ['default', 'kube-system'].map((name) => ({ metadata: { name } })),
        // Echoes the authenticated user so tests can see whose credential arrived.
        metadata: { resourceVersion: '1', user: who.user },
      });
      return;
    }
    const pods = url.pathname.match(/^\/api\/v1\/(?:namespaces\/([^/]+)\/)?pods$/);
    if (req.method === 'GET' && pods) {
      send(200, {
        kind: 'PodList',
        apiVersion: 'v1',
        metadata: { resourceVersion: '1', user: who.user },
        items: [
          { metadata: { name: 'web-1', namespace: pods[1] ?? 'default' }, spec: { containers: [{ name: 'web', image: 'nginx' }] }, status: { phase: 'Running' } },
          { metadata: { name: 'web-2', namespace: pods[1] ?? 'default' }, spec: { containers: [{ name: 'web', image: 'nginx' }] }, status: { phase: 'Running' } },
        ],
      });
      return;
    }
    // Any other collection (services, deployments, ...): an empty list, as a quiet cluster has.
    const list = url.pathname.match(/^\/(?:api\/v1|apis\/[^/]+\/[^/]+)\/(?:namespaces\/[^/]+\/)?([a-z]+)$/);
    if (req.method === 'GET' && list && list[1] !== 'namespaces') {
      send(200, { kind: 'List', apiVersion: 'v1', metadata: { resourceVersion: '1' }, items: [] });
      return;
    }
    send(404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404 });
  }

  async start() {
    this.server = https.createServer(
      {
        key: this.serverCert.keyPem,
        cert: this.serverCert.certPem,
        ca: this.ca.certPem,
        requestCert: true,
        rejectUnauthorized: false,
      },
      (req, res) => this.handle(req, res),
    );
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `https://127.0.0.1:${this.server.address().port}`;
    return this;
  }

  async stop() {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
    this.server = undefined;
  }
}

module.exports = { KubeApiStandIn };
