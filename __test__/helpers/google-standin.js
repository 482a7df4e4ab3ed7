'use strict';
// Loopback stand-ins for Google's OAuth2 token endpoint and the GCE metadata server. They
// check what Google checks:
// - JWT-bearer grant (RFC 7523): an RS256 assertion whose signature verifies against the
//   public key registered for its `iss` (the service account's client_email), `aud` equal to
//   the token endpoint, a `scope`, and sane `iat`/`exp` (at most one hour, not in the future
//   or past). Google answers failures with 400 `invalid_grant`.
// - refresh-token grant: the registered client_id/client_secret and a refresh token issued
//   to that client.
// - metadata server: `Metadata-Flavor: Google` on the request (403 without it), and it sends
//   the same header back.
// Every access token issued is random, contains LEAKCANARY, and is remembered with the
// identity it was issued to, so an API stand-in can accept exactly these tokens.

const http = require('node:http');
const crypto = require('node:crypto');

const SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const METADATA_TOKEN_PATH = '/computeMetadata/v1/instance/service-accounts/default/token';

/** A service-account key as Google issues it, for a fresh RSA key pair. */
function serviceAccountKey({ clientEmail = 'backstage-LEAKCANARY@test-project.iam.gserviceaccount.com', tokenUri } = {}) {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const json = {
    type: 'service_account',
    project_id: 'test-project',
    private_key_id: crypto.randomBytes(20).toString('hex'),
    private_key: privateKey,
    client_email: clientEmail,
    client_id: '100000000000000000001',
    auth_uri: 'https://accounts.google.com/o/oauth2/auth',
    token_uri: tokenUri,
  };
  return { json, publicKey };
}

function b64urlJson(part) {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

class GoogleStandIn {
  /**
   * @param {object} [opts]
   * @param {number} [opts.lifetimeS] `expires_in` of issued tokens (default 3600)
   * @param {number} [opts.delayMs] answer token requests after this long
   */
  constructor({ lifetimeS = 3600, delayMs = 0 } = {}) {
    this.lifetimeS = lifetimeS;
    this.delayMs = delayMs;
    /** client_email -> public key (PEM). */
    this.serviceAccounts = new Map();
    /** client_id -> { secret, refreshTokens: Set, user }. */
    this.oauthClients = new Map();
    /** The metadata server's attached service account. */
    this.metadataAccount = 'default-LEAKCANARY@test-project.iam.gserviceaccount.com';
    /** access token -> { subject, via, expiresAtMs }. */
    this.issued = new Map();
    /** Every request: { kind: 'token' | 'metadata' | 'other', ok, grant?, reason? }. */
    this.requests = [];
    /**
     * Set to '500', '429', 'not-json', 'no-token', 'null-token', 'empty-token', 'hang' or
     * { status, body } for a custom answer; applies to the token endpoint and metadata server.
     */
    this.fault = undefined;
    this.sockets = new Set();
  }

  get tokenUri() {
    return `${this.url}/token`;
  }

  /** `host:port`, as GCE_METADATA_HOST takes it. */
  get metadataHost() {
    return `127.0.0.1:${this.port}`;
  }

  tokenRequests(kind = 'token') {
    return this.requests.filter((r) => r.kind === kind).length;
  }

  /** A new service-account key registered with this endpoint. */
  newServiceAccount(opts = {}) {
    const key = serviceAccountKey({ tokenUri: this.tokenUri, ...opts });
    this.serviceAccounts.set(key.json.client_email, key.publicKey);
    return key.json;
  }

  /** An `authorized_user` credentials file registered with this endpoint. */
  newAuthorizedUser(user = 'dev-user@example.com') {
    const clientId = `${crypto.randomBytes(6).toString('hex')}.apps.googleusercontent.com`;
    const secret = `secret-LEAKCANARY-${crypto.randomBytes(8).toString('hex')}`;
    const refreshToken = `1//refresh-LEAKCANARY-${crypto.randomBytes(12).toString('hex')}`;
    this.oauthClients.set(clientId, { secret, refreshTokens: new Set([refreshToken]), user });
    return {
      type: 'authorized_user',
      client_id: clientId,
      client_secret: secret,
      refresh_token: refreshToken,
      token_uri: this.tokenUri,
    };
  }

  /** The identity a token was issued to, if this stand-in issued it and it is unexpired. */
  subjectOf(token) {
    const t = this.issued.get(token);
    return t && t.expiresAtMs > Date.now() ? t.subject : undefined;
  }

  issue(subject, via) {
    const token = `ya29.LEAKCANARY-${crypto.randomBytes(24).toString('base64url')}`;
    this.issued.set(token, { subject, via, expiresAtMs: Date.now() + this.lifetimeS * 1000 });
    return { access_token: token, expires_in: this.lifetimeS, token_type: 'Bearer' };
  }

  /** Checks a JWT-bearer assertion as Google does; returns the subject or throws a reason. */
  verifyAssertion(assertion) {
    const parts = (assertion ?? '').split('.');
    if (parts.length !== 3) throw new Error('Invalid JWT: not three segments');
    const header = b64urlJson(parts[0]);
    const claims = b64urlJson(parts[1]);
    if (header.alg !== 'RS256') throw new Error(`Invalid JWT: alg ${header.alg}`);
    const publicKey = this.serviceAccounts.get(claims.iss);
    if (!publicKey) throw new Error('Invalid JWT: unknown iss');
    const signed = Buffer.from(`${parts[0]}.${parts[1]}`);
    const ok = crypto.verify('RSA-SHA256', signed, publicKey, Buffer.from(parts[2], 'base64url'));
    if (!ok) throw new Error('Invalid JWT Signature.');
    if (claims.aud !== this.tokenUri) throw new Error('Invalid JWT: Token must be a short-lived token and in a reasonable timeframe (aud)');
    const scopes = String(claims.scope ?? '').split(' ');
    if (!scopes.includes(SCOPE)) throw new Error('Invalid JWT: missing scope');
    const now = Math.floor(Date.now() / 1000);
    if (!Number.isInteger(claims.iat) || !Number.isInteger(claims.exp)) throw new Error('Invalid JWT: iat/exp');
    if (claims.iat > now + 60 || claims.iat < now - 300) throw new Error('Invalid JWT: iat');
    if (claims.exp <= now || claims.exp - claims.iat > 3600) throw new Error('Invalid JWT: exp');
    return claims.iss;
  }

  handleToken(form) {
    const grant = form.get('grant_type');
    if (grant === JWT_BEARER) {
      try {
        return { status: 200, body: this.issue(this.verifyAssertion(form.get('assertion')), 'jwt'), grant };
      } catch (e) {
        return { status: 400, body: { error: 'invalid_grant', error_description: e.message }, grant };
      }
    }
    if (grant === 'refresh_token') {
      const client = this.oauthClients.get(form.get('client_id'));
      if (!client || client.secret !== form.get('client_secret')) {
        return { status: 401, body: { error: 'invalid_client', error_description: 'Unauthorized' }, grant };
      }
      if (!client.refreshTokens.has(form.get('refresh_token'))) {
        return { status: 400, body: { error: 'invalid_grant', error_description: 'Bad Request' }, grant };
      }
      return { status: 200, body: this.issue(client.user, 'refresh'), grant };
    }
    return { status: 400, body: { error: 'unsupported_grant_type', error_description: 'Invalid grant_type' }, grant };
  }

  handleMetadata(req, url) {
    if (req.headers['metadata-flavor'] !== 'Google') {
      return { status: 403, body: 'Missing Metadata-Flavor: Google header', text: true };
    }
    const scopes = (url.searchParams.get('scopes') ?? '').split(',');
    if (!scopes.includes(SCOPE)) return { status: 400, body: 'missing scope', text: true };
    return { status: 200, body: this.issue(this.metadataAccount, 'metadata') };
  }

  applyFault(answer) {
    const f = this.fault;
    if (!f) return answer;
    if (typeof f === 'object') return f;
    switch (f) {
      case '500':
        return { status: 500, body: { error: 'internal_failure', error_description: 'Backend Error' } };
      case '429':
        return { status: 429, body: { error: 'rate_limit_exceeded', error_description: 'Rate Limit Exceeded' } };
      case 'not-json':
        return { status: 200, body: '{"access_token": "ya29.LEAKCANARY-trunc', text: true };
      case 'no-token':
        return { status: 200, body: { expires_in: 3600, token_type: 'Bearer' } };
      case 'null-token':
        return { status: 200, body: { access_token: null, expires_in: 3600 } };
      case 'empty-token':
        return { status: 200, body: { access_token: '', expires_in: 3600 } };
      default:
        return answer;
    }
  }

  async start() {
    this.server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', async () => {
        const url = new URL(req.url, 'http://127.0.0.1');
        const record = { kind: 'other', method: req.method, path: url.pathname };
        this.requests.push(record);
        let answer;
        if (req.method === 'POST' && url.pathname === '/token') {
          record.kind = 'token';
          if (!String(req.headers['content-type']).startsWith('application/x-www-form-urlencoded')) {
            answer = { status: 400, body: { error: 'invalid_request', error_description: 'content type' } };
          } else {
            answer = this.handleToken(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
          }
        } else if (req.method === 'GET' && url.pathname === METADATA_TOKEN_PATH) {
          record.kind = 'metadata';
          answer = this.handleMetadata(req, url);
        } else if (req.method === 'GET' && url.pathname === '/computeMetadata/v1/project/project-id') {
          // google-auth-library asks for it before each token; a real server answers it.
          record.kind = 'project';
          answer = req.headers['metadata-flavor'] === 'Google'
            ? { status: 200, body: 'test-project', text: true }
            : { status: 403, body: 'Missing Metadata-Flavor: Google header', text: true };
        } else {
          answer = { status: 404, body: 'not found', text: true };
        }
        record.grant = answer.grant;
        record.ok = answer.status === 200 && !this.fault;
        record.reason = answer.body?.error_description;
        if (this.fault === 'hang') return; // never answer
        answer = this.applyFault(answer);
        if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
        const headers = { 'content-type': answer.text ? 'text/plain' : 'application/json' };
        if (record.kind === 'metadata' || record.kind === 'project') headers['metadata-flavor'] = 'Google';
        res.writeHead(answer.status, headers);
        res.end(typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body));
      });
    });
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = this.server.address().port;
    this.url = `http://127.0.0.1:${this.port}`;
    return this;
  }

  async stop() {
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

module.exports = { GoogleStandIn, serviceAccountKey, SCOPE, METADATA_TOKEN_PATH };
