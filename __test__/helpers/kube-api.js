'use strict';
// A loopback Kubernetes API server stand-in. Like a real API server it authenticates every
// request (a client certificate from its CA first, as kube-apiserver's authenticator chain
// does, then a bearer token it knows) and answers 401 with a Kubernetes Status otherwise. It
// records who made each request.
//
// With `concierge`, it also serves Pinniped's TokenCredentialRequest API the way the Concierge
// does: an anonymous POST; a known token yields a client certificate signed by this server's
// CA (CN = the user), 5 minutes by default; an unknown token or authenticator yields a
// *successful* create with `status.message: "authentication failed"`.

const https = require('node:https');
const { createCA, issue, keyPair } = require('./pki');

class KubeApiStandIn {
  /**
   * @param {object} opts
   * @param {Record<string,string>} [opts.tokens] bearer token -> user name
   * @param {(token: string) => string | undefined} [opts.verifyToken] extra token check
   */
  constructor({ tokens = {}, verifyToken, concierge } = {}) {
    this.tokens = new Map(Object.entries(tokens));
    this.verifyToken = verifyToken;
    this.requests = [];
    this.concierge = concierge && {
      users: new Map(Object.entries(concierge.users ?? {})),
      authenticator: concierge.authenticator ?? {
        apiGroup: 'authentication.concierge.pinniped.dev',
        kind: 'JWTAuthenticator',
        name: 'supervisor',
      },
      lifetimeMs: concierge.lifetimeMs ?? 5 * 60_000,
      // Tokens matching this issue one shared, pre-made certificate (for load tests).
      sharedCertFor: concierge.sharedCertFor,
      // Issue each user's certificate once and answer with it again (for benchmarks, so the
      // stand-in's certificate signing is not timed as the client's cost).
      reuseCertificates: concierge.reuseCertificates ?? false,
      issued: new Map(),
    };
    /** Every TokenCredentialRequest received: { path, headers, body, raw }. */
    this.tcr = [];
    /** Set to 'status-401', 'status-403', 'status-404', 'not-json', 'no-status' or 'hang'. */
    this.conciergeFault = undefined;
    this.ca = createCA('kube-api-test-ca');
    this.serverCert = issue(this.ca, { commonName: '127.0.0.1', server: true });
  }

  get caPem() {
    return this.ca.certPem;
  }

  get caData() {
    return Buffer.from(this.ca.certPem).toString('base64');
  }

  /** A client certificate this server accepts, for `user`. Certificates share one key pair. */
  clientCert(user, lifetimeMs) {
    this.clientKeys ??= keyPair();
    return issue(this.ca, { commonName: user, lifetimeMs, keys: this.clientKeys });
  }

  identify(req) {
    const peer = req.socket.getPeerCertificate && req.socket.getPeerCertificate();
    if (req.socket.authorized && peer && peer.subject) {
      return { user: peer.subject.CN, via: 'x509' };
    }
    const auth = req.headers.authorization;
    if (auth && auth.startsWith('Bearer ')) {
      const token = auth.slice('Bearer '.length);
      const user = this.tokens.get(token) ?? (this.verifyToken && this.verifyToken(token));
      return user ? { user, via: 'bearer' } : undefined;
    }
    return undefined;
  }

  handleTokenCredentialRequest(req, res, raw, apiVersion) {
    const send = (status, body) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(typeof body === 'string' ? body : JSON.stringify(body));
    };
    let body;
    try {
      body = JSON.parse(raw);
    } catch {
      body = undefined;
    }
    this.tcr.push({ path: new URL(req.url, 'https://x').pathname, search: new URL(req.url, 'https://x').search, headers: req.headers, body, raw });
    const status = (code, reason, message) =>
      send(code, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });
    switch (this.conciergeFault) {
      case 'status-401':
        return status(401, 'Unauthorized', 'Unauthorized');
      case 'status-403':
        return status(403, 'Forbidden', 'tokencredentialrequests.login.concierge.pinniped.dev is forbidden');
      case 'status-404':
        return status(404, 'NotFound', 'the server could not find the requested resource');
      case 'not-json':
        return send(500, '<html>upstream error</html>');
      case 'no-status':
        return send(201, { kind: 'TokenCredentialRequest', apiVersion });
      case 'hang':
        return; // never answers
    }
    if (
      req.headers['content-type'] !== 'application/json' ||
      !body ||
      body.apiVersion !== apiVersion ||
      body.kind !== 'TokenCredentialRequest' ||
      typeof body.spec?.token !== 'string' ||
      body.spec.token === ''
    ) {
      return status(400, 'BadRequest', 'invalid TokenCredentialRequest');
    }
    const failed = { kind: 'TokenCredentialRequest', apiVersion, status: { message: 'authentication failed' } };
    const a = body.spec.authenticator ?? {};
    const want = this.concierge.authenticator;
    if (a.apiGroup !== want.apiGroup || a.kind !== want.kind || a.name !== want.name) {
      return send(201, failed);
    }
    const shared = this.concierge.sharedCertFor && this.concierge.sharedCertFor.test(body.spec.token);
    const user = shared ? 'load-test' : this.concierge.users.get(body.spec.token);
    if (!user) return send(201, failed);
    let cert;
    if (shared) {
      this.sharedCert ??= this.clientCert('load-test', this.concierge.lifetimeMs);
      cert = this.sharedCert;
    } else if (this.concierge.reuseCertificates) {
      cert = this.concierge.issued.get(user) ?? this.clientCert(user, this.concierge.lifetimeMs);
      this.concierge.issued.set(user, cert);
    } else {
      cert = this.clientCert(user, this.concierge.lifetimeMs);
    }
    send(201, {
      kind: 'TokenCredentialRequest',
      apiVersion,
      status: {
        credential: {
          expirationTimestamp: cert.notAfter.toISOString().replace(/\.\d{3}Z$/, 'Z'),
          clientCertificateData: cert.certPem,
          clientKeyData: cert.keyPem,
        },
      },
    });
  }

  handle(req, res) {
    if (req.url === '/__standin/stats') {
      // Unauthenticated counters, for benchmarks that run this stand-in in another process.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ tokenCredentialRequests: this.tcr.length, requests: this.requests.length }));
      return;
    }
    const tcr = req.url.match(/^\/apis\/(login\.concierge\.[^/]+\/v1alpha1)\/tokencredentialrequests(?:\?.*)?$/);
    if (this.concierge && tcr && req.method === 'POST') {
      let raw = '';
      req.on('data', (d) => (raw += d));
      req.on('end', () => this.handleTokenCredentialRequest(req, res, raw, tcr[1]));
      return;
    }
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
    // Every TCP connection, so stop() can end those that never became HTTP ones (a TLS
    // handshake still under way): `closeAllConnections` does not see them, and `close`
    // would wait for them.
    this.sockets = new Set();
    /** TCP connections accepted, and the most open at once (tests may reset both). */
    this.connectionsOpened = 0;
    this.peakConnections = 0;
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      this.peakConnections = Math.max(this.peakConnections, this.sockets.size);
      this.connectionsOpened += 1;
      socket.once('close', () => this.sockets.delete(socket));
    });
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `https://127.0.0.1:${this.server.address().port}`;
    return this;
  }

  async stop() {
    if (!this.server) return;
    this.server.closeAllConnections();
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
    this.server = undefined;
  }
}

module.exports = { KubeApiStandIn };
