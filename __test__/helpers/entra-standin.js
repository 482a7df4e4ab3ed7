'use strict';
// Loopback stand-ins for what Azure credentials talk to, checking what the real services check:
// - the Microsoft Entra ID token endpoint `POST /{tenant}/oauth2/v2.0/token` (client
//   credentials): a form body with grant_type, client_id and scope, and either the client's
//   secret, or a client assertion: for a certificate client an RS256 JWT signed by the
//   certificate's key whose `x5t` is the certificate's SHA-1 thumbprint, `aud` this token
//   endpoint, `iss` = `sub` = the client id and `exp` in the future; for a workload-identity
//   client exactly the federated token it trusts;
// - IMDS `GET /metadata/identity/oauth2/token`, which requires `Metadata: true` (400 without
//   it, as the real one answers probes);
// - the App Service identity endpoint `GET /appservice/token`, which requires the
//   `X-IDENTITY-HEADER` secret.
// Every token issued contains LEAKCANARY and is remembered (`issued`), so an API server
// stand-in can accept exactly these tokens.

const crypto = require('node:crypto');
const http = require('node:http');
const { createCA } = require('./pki');

const AKS_SCOPE = '6dae42f8-4368-4678-94ff-3960e28e3630/.default';

function b64urlJson(part) {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

/** A self-signed certificate and its key; `pkcs8` picks the `PRIVATE KEY` PEM form. */
function clientCertificate({ pkcs8 = false } = {}) {
  const ca = createCA('entra-client-LEAKCANARY');
  const keyPem = pkcs8
    ? crypto.createPrivateKey(ca.keyPem).export({ type: 'pkcs8', format: 'pem' })
    : ca.keyPem;
  const der = Buffer.from(
    ca.certPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''),
    'base64',
  );
  return {
    certPem: ca.certPem,
    keyPem,
    // What AZURE_CLIENT_CERTIFICATE_PATH points at; the comment line makes the file's text
    // carry the leak marker (PEM readers skip text outside the blocks).
    file: `# LEAKCANARY test client certificate\n${ca.certPem}${keyPem}`,
    x5t: crypto.createHash('sha1').update(der).digest('base64url'),
  };
}

class EntraStandIn {
  /**
   * @param {object} opts
   * @param {string} [opts.tenantId]
   * @param {Record<string, {secret?: string, certificate?: {certPem: string, x5t: string}, federatedToken?: string}>} opts.clients
   * @param {string} [opts.identityHeader] the App Service `X-IDENTITY-HEADER` secret
   * @param {number} [opts.lifetimeS] token lifetime
   */
  constructor({ tenantId = 'tenant-1', clients = {}, identityHeader = 'identity-header-LEAKCANARY', lifetimeS = 3600 } = {}) {
    this.tenantId = tenantId;
    this.clients = clients;
    this.identityHeader = identityHeader;
    this.lifetimeS = lifetimeS;
    /** token -> { clientId, scope, via } */
    this.issued = new Map();
    /** Every request: { endpoint, scope?, clientId?, via? }. */
    this.requests = [];
    /** 500 | 429 | 'malformed' | 'missing' | 'hang' | undefined, for every endpoint. */
    this.fault = undefined;
    /** Milliseconds before answering (to hold concurrent callers in flight). */
    this.delayMs = 0;
    this.sockets = new Set();
  }

  async start() {
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${this.server.address().port}`;
    return this;
  }

  async stop() {
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }

  get tokenUrl() {
    return `${this.url}/${this.tenantId}/oauth2/v2.0/token`;
  }

  tokenRequests() {
    return this.requests.filter((r) => r.endpoint === 'token');
  }

  issue(fields) {
    const token = `entra-${this.issued.size + 1}-LEAKCANARY-${crypto.randomBytes(6).toString('hex')}`;
    this.issued.set(token, fields);
    return token;
  }

  /** The identity a token stands for, if this stand-in issued it for `scope`. */
  verify(token, scope = AKS_SCOPE) {
    const t = this.issued.get(token);
    return t && t.scope === scope ? t : undefined;
  }

  send(res, status, body) {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  }

  aadError(res, status, code, error, description) {
    this.send(res, status, {
      error,
      error_description: `AADSTS${code}: ${description} Trace ID: 0000 Correlation ID: 1111 Timestamp: 2026-01-01`,
      error_codes: [code],
    });
  }

  /** Applies the configured fault; true when it answered. */
  faulted(res, success) {
    switch (this.fault) {
      case 500:
        this.aadError(res, 500, 50000, 'temporarily_unavailable', 'There was an error issuing a token.');
        return true;
      case 429:
        this.aadError(res, 429, 50196, 'temporarily_unavailable', 'The server terminated an operation because it encountered a client request loop.');
        return true;
      case 'malformed':
        this.send(res, 200, '{"access_token": "entra-LEAKCANARY-half');
        return true;
      case 'missing':
        this.send(res, 200, { token_type: 'Bearer', expires_in: 3600 });
        return true;
      case 'hang':
        return true;
      default:
        success();
        return true;
    }
  }

  handle(req, res) {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const answer = () => this.route(req, res, Buffer.concat(chunks).toString('utf8'));
      if (this.delayMs > 0) setTimeout(answer, this.delayMs);
      else answer();
    });
  }

  route(req, res, body) {
    const url = new URL(req.url, this.url);
    if (req.method === 'POST' && url.pathname === `/${this.tenantId}/oauth2/v2.0/token`) {
      return this.token(req, res, body);
    }
    if (req.method === 'GET' && url.pathname === '/metadata/identity/oauth2/token') {
      return this.imds(req, res, url);
    }
    if (req.method === 'GET' && url.pathname === '/appservice/token') {
      return this.appService(req, res, url);
    }
    if (req.method === 'POST' && url.pathname.endsWith('/oauth2/v2.0/token')) {
      return this.aadError(res, 400, 90002, 'invalid_request', 'Tenant not found.');
    }
    return this.send(res, 404, { error: 'not found' });
  }

  token(req, res, body) {
    const form = new URLSearchParams(body);
    const record = { endpoint: 'token', clientId: form.get('client_id'), scope: form.get('scope') };
    this.requests.push(record);
    if (!String(req.headers['content-type']).startsWith('application/x-www-form-urlencoded')) {
      return this.aadError(res, 400, 900144, 'invalid_request', 'The request body must contain form data.');
    }
    if (form.get('grant_type') !== 'client_credentials') {
      return this.aadError(res, 400, 900144, 'invalid_request', "The request body must contain the 'grant_type' parameter.");
    }
    if (!form.get('scope')) {
      return this.aadError(res, 400, 900144, 'invalid_request', "The request body must contain the 'scope' parameter.");
    }
    const client = this.clients[form.get('client_id')];
    if (!client) {
      return this.aadError(res, 400, 700016, 'unauthorized_client', 'Application was not found in the directory.');
    }
    let via;
    if (form.has('client_secret')) {
      if (client.secret === undefined || form.get('client_secret') !== client.secret) {
        return this.aadError(res, 401, 7000215, 'invalid_client', 'Invalid client secret provided.');
      }
      via = 'secret';
    } else if (form.get('client_assertion_type') === 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') {
      const assertion = form.get('client_assertion') ?? '';
      if (client.certificate) {
        const problem = this.checkCertificateAssertion(assertion, client.certificate, form.get('client_id'));
        if (problem) return this.aadError(res, 401, 700027, 'invalid_client', `Client assertion failed: ${problem}.`);
        via = 'certificate';
      } else if (client.federatedToken !== undefined) {
        if (assertion !== client.federatedToken) {
          return this.aadError(res, 401, 700213, 'invalid_client', 'No matching federated identity record found.');
        }
        via = 'workload';
      } else {
        return this.aadError(res, 401, 700027, 'invalid_client', 'Client assertion is not accepted for this client.');
      }
    } else {
      return this.aadError(res, 401, 7000216, 'invalid_client', "'client_assertion', 'client_secret' or 'request' is required.");
    }
    record.via = via;
    return this.faulted(res, () => {
      const token = this.issue({ clientId: form.get('client_id'), scope: form.get('scope'), via });
      this.send(res, 200, { token_type: 'Bearer', expires_in: this.lifetimeS, ext_expires_in: this.lifetimeS, access_token: token });
    });
  }

  checkCertificateAssertion(assertion, certificate, clientId) {
    const parts = assertion.split('.');
    if (parts.length !== 3) return 'not a JWT';
    let header;
    let claims;
    try {
      header = b64urlJson(parts[0]);
      claims = b64urlJson(parts[1]);
    } catch {
      return 'undecodable JWT';
    }
    if (header.alg !== 'RS256') return `alg ${header.alg}`;
    if (header.x5t !== certificate.x5t) return 'x5t is not the certificate thumbprint';
    const ok = crypto.verify(
      'RSA-SHA256',
      Buffer.from(`${parts[0]}.${parts[1]}`),
      crypto.createPublicKey(certificate.certPem),
      Buffer.from(parts[2], 'base64url'),
    );
    if (!ok) return 'bad signature';
    const now = Math.floor(Date.now() / 1000);
    if (claims.aud !== this.tokenUrl) return `aud ${claims.aud}`;
    if (claims.iss !== clientId || claims.sub !== clientId) return 'iss/sub is not the client id';
    if (!(claims.exp > now)) return 'expired';
    if (claims.nbf > now + 300) return 'not yet valid';
    if (!claims.jti) return 'no jti';
    return undefined;
  }

  managedIdentityAnswer(res, resource, via, clientId) {
    return this.faulted(res, () => {
      const token = this.issue({ clientId: clientId ?? 'system-assigned', scope: `${resource}/.default`, via });
      const expiresOn = Math.floor(Date.now() / 1000) + this.lifetimeS;
      this.send(res, 200, {
        access_token: token,
        expires_on: String(expiresOn),
        expires_in: String(this.lifetimeS),
        resource,
        token_type: 'Bearer',
      });
    });
  }

  imds(req, res, url) {
    const record = { endpoint: 'imds', metadata: req.headers.metadata };
    this.requests.push(record);
    if (req.headers.metadata !== 'true') {
      return this.send(res, 400, { error: 'invalid_request', error_description: 'Required metadata header not specified' });
    }
    if (url.searchParams.get('api-version') !== '2018-02-01' || !url.searchParams.get('resource')) {
      return this.send(res, 400, { error: 'invalid_request', error_description: 'Required query variable missing' });
    }
    record.scope = `${url.searchParams.get('resource')}/.default`;
    return this.managedIdentityAnswer(res, url.searchParams.get('resource'), 'imds', url.searchParams.get('client_id') ?? undefined);
  }

  appService(req, res, url) {
    this.requests.push({ endpoint: 'appservice' });
    if (req.headers['x-identity-header'] !== this.identityHeader) {
      return this.send(res, 401, { error: { code: 'Unauthorized', message: 'X-IDENTITY-HEADER is missing or wrong' } });
    }
    if (url.searchParams.get('api-version') !== '2019-08-01' || !url.searchParams.get('resource')) {
      return this.send(res, 400, { error: { code: 'BadRequest', message: 'api-version and resource are required' } });
    }
    return this.managedIdentityAnswer(res, url.searchParams.get('resource'), 'appservice', url.searchParams.get('client_id') ?? undefined);
  }
}

module.exports = { EntraStandIn, clientCertificate, AKS_SCOPE };
