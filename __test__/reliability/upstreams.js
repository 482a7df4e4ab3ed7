'use strict';
// Every upstream the package calls, as one descriptor each. Adding an upstream to the fault
// suite is one entry here:
//   name      how errors must name it (also the key in the results file)
//   names     RegExp the Error message must match
//   healthy   (req, body, res) answers as the real service does (checks what it checks)
//   throttle  optional: the service's own throttling answer (default: 429)
//   env       optional: (endpoint) -> real-environment variables that point the client at it
//   scheme    'http' or 'https': which address of the fault server `endpoint` is
//   make      (ctx) -> a strategy (ctx.timeoutMs, ctx.cache; made after `env` is applied)
//   call      (strategy, ctx, n) -> promise of a credential; `n` is distinct per call, so calls
//             that should reach the upstream are not answered from a cache
//   refreshLeakCheck  false to leave it out of the refresh-path socket check (say why)
//   perCallEndpoint  true when the endpoint is per call (so an endpoint fault can clear on the
//             same instance); otherwise a new instance is made with the good endpoint

const crypto = require('node:crypto');
const { AwsIamStrategy, AzureIdentityStrategy, PinnipedStrategy, GoogleServiceAccountStrategy, MicrosoftEntraIdStrategy } = require('../..');
const { serviceAccountKey } = require('../helpers/google-standin');
const { createCA, issue, keyPair } = require('../helpers/pki');

const MARK = 'LEAKCANARY';
const MAIN = { accessKeyId: 'AKIAFAULTSEXAMPLE001', secretAccessKey: `mainSecret/${MARK}/0001` };

const stsCredentials = () => ({
  AccessKeyId: `ASIA${crypto.randomBytes(8).toString('hex').toUpperCase()}`,
  SecretAccessKey: `stsSecret/${MARK}/${crypto.randomBytes(6).toString('hex')}`,
  SessionToken: `stsSession${MARK}${crypto.randomBytes(12).toString('base64')}`,
});
const inAnHour = () => new Date(Date.now() + 3600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');

function stsXml(res, status, text) {
  res.writeHead(status, { 'content-type': 'text/xml' });
  res.end(text);
}

const sts = {
  name: 'STS',
  names: /\bSTS\b/,
  scheme: 'http',
  env: (endpoint) => ({ AWS_ENDPOINT_URL_STS: endpoint }),
  healthy(req, body, res) {
    const params = new URLSearchParams(body);
    // STS refuses unsigned requests.
    if (!/^AWS4-HMAC-SHA256 Credential=AKIAFAULTSEXAMPLE001\//.test(req.headers.authorization ?? '')) {
      return stsXml(res, 403, '<ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code><Message>unsigned</Message></Error></ErrorResponse>');
    }
    if (params.get('Action') !== 'AssumeRole' || !params.get('RoleArn')) {
      return stsXml(res, 400, '<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>bad action</Message></Error></ErrorResponse>');
    }
    const c = stsCredentials();
    stsXml(
      res,
      200,
      `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials>` +
        `<AccessKeyId>${c.AccessKeyId}</AccessKeyId><SecretAccessKey>${c.SecretAccessKey}</SecretAccessKey>` +
        `<SessionToken>${c.SessionToken}</SessionToken><Expiration>${inAnHour()}</Expiration></Credentials>` +
        `<AssumedRoleUser><AssumedRoleId>AROA:s</AssumedRoleId><Arn>${params.get('RoleArn')}/s</Arn></AssumedRoleUser>` +
        `</AssumeRoleResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></AssumeRoleResponse>`,
    );
  },
  throttle: (_req, _body, res) =>
    stsXml(res, 400, '<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>'),
  malformed: '<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>oops',
  make: ({ timeoutMs, cache }) =>
    new AwsIamStrategy({ config: { aws: { mainAccount: MAIN, accounts: [{ accountId: '123456789012', ...MAIN }] } }, timeoutMs, cache }),
  call: (s, _ctx, n) =>
    s.getCredential(
      { name: 'eks', url: 'https://127.0.0.1:6443', authMetadata: { 'kubernetes.io/aws-assume-role': `arn:aws:iam::123456789012:role/r${n}` } },
      {},
    ),
};

function imdsHealthy(req, _body, res) {
  const json = (status, value) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(value));
  };
  if (req.method === 'PUT' && req.url === '/latest/api/token') {
    if (!req.headers['x-aws-ec2-metadata-token-ttl-seconds']) return json(400, {});
    res.writeHead(200, { 'x-aws-ec2-metadata-token-ttl-seconds': '21600', 'content-type': 'text/plain' });
    return res.end(`imds-session-${MARK}`);
  }
  if (req.headers['x-aws-ec2-metadata-token'] !== `imds-session-${MARK}`) return json(401, {});
  if (req.url === '/latest/meta-data/iam/security-credentials/') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    return res.end('imds-role');
  }
  if (req.url === '/latest/meta-data/iam/security-credentials/imds-role') {
    const c = stsCredentials();
    return json(200, { Code: 'Success', Type: 'AWS-HMAC', LastUpdated: new Date().toISOString(), AccessKeyId: c.AccessKeyId, SecretAccessKey: c.SecretAccessKey, Token: c.SessionToken, Expiration: inAnHour() });
  }
  return json(404, {});
}

const imds = {
  name: 'IMDS',
  names: /IMDS|instance metadata|169\.254|EC2/i,
  scheme: 'http',
  env: (endpoint) => ({ AWS_EC2_METADATA_DISABLED: null, AWS_EC2_METADATA_SERVICE_ENDPOINT: endpoint }),
  healthy: imdsHealthy,
  make: ({ timeoutMs, cache }) => new AwsIamStrategy({ timeoutMs, cache }),
  call: (s) => s.getCredential({ name: 'eks', url: 'https://127.0.0.1:6443', authMetadata: {} }, {}),
};

const ECS_AUTH = `ecs-auth-${MARK}`;
const ecs = {
  name: 'ECS',
  names: /ECS|container credentials|container metadata|ContainerCredentials/i,
  scheme: 'http',
  env: (endpoint) => ({ AWS_CONTAINER_CREDENTIALS_FULL_URI: `${endpoint}/ecs`, AWS_CONTAINER_AUTHORIZATION_TOKEN: ECS_AUTH }),
  healthy(req, _body, res) {
    res.setHeader('content-type', 'application/json');
    if (req.url !== '/ecs' || req.headers.authorization !== ECS_AUTH) {
      res.writeHead(401);
      return res.end('{"message":"unauthorized"}');
    }
    const c = stsCredentials();
    res.writeHead(200);
    res.end(JSON.stringify({ AccessKeyId: c.AccessKeyId, SecretAccessKey: c.SecretAccessKey, Token: c.SessionToken, Expiration: inAnHour() }));
  },
  make: ({ timeoutMs, cache }) => new AwsIamStrategy({ timeoutMs, cache }),
  call: (s) => s.getCredential({ name: 'eks', url: 'https://127.0.0.1:6443', authMetadata: {} }, {}),
};

let conciergePki;
function conciergeCert(user) {
  conciergePki ??= { ca: createCA('concierge-faults-ca'), keys: keyPair(), certs: new Map() };
  let cert = conciergePki.certs.get(user);
  if (!cert) {
    cert = issue(conciergePki.ca, { commonName: user, keys: conciergePki.keys, lifetimeMs: 3600_000 });
    conciergePki.certs.set(user, cert);
  }
  return cert;
}

const PINNIPED_GROUP = 'login.concierge.pinniped.dev/v1alpha1';
const pinniped = {
  name: 'Pinniped Concierge',
  names: /pinniped|tokencredentialrequests/i,
  scheme: 'https',
  perCallEndpoint: true,
  healthy(req, body, res) {
    let tcr;
    try {
      tcr = JSON.parse(body);
    } catch {
      tcr = undefined;
    }
    const send = (status, value) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(value));
    };
    if (req.method !== 'POST' || req.url !== `/apis/${PINNIPED_GROUP}/tokencredentialrequests` || tcr?.kind !== 'TokenCredentialRequest' || typeof tcr?.spec?.token !== 'string') {
      return send(400, { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'bad request', code: 400 });
    }
    const user = /^token-(\w+)-/.exec(tcr.spec.token)?.[1] ?? 'anyone';
    const cert = conciergeCert(user);
    send(201, {
      kind: 'TokenCredentialRequest',
      apiVersion: PINNIPED_GROUP,
      status: { credential: { expirationTimestamp: cert.notAfter.toISOString().replace(/\.\d{3}Z$/, 'Z'), clientCertificateData: cert.certPem, clientKeyData: cert.keyPem } },
    });
  },
  make: ({ timeoutMs, cache }) => new PinnipedStrategy({ timeoutMs, cache }),
  call: (s, ctx, n) =>
    s.getCredential(
      { name: 'pinniped', url: ctx.endpoint, caData: ctx.caData, authMetadata: {} },
      { pinniped: { clusteridtoken: `token-u${n % 7}-${n}-${MARK}` } },
    ),
};

const ENTRA_SECRET = `entra-secret-${MARK}`;
const jsonAnswer = (res, status, value) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
};
const entra = {
  name: 'Entra token endpoint',
  names: /Entra|oauth2\/v2\.0\/token|authority/i,
  // Plain HTTP is accepted for a loopback authority only; Entra's TLS uses the system roots.
  scheme: 'http',
  healthy(req, body, res) {
    const form = new URLSearchParams(body);
    if (req.method !== 'POST' || req.url !== '/tenant-faults/oauth2/v2.0/token') {
      return jsonAnswer(res, 404, { error: 'invalid_request', error_description: 'AADSTS90002: Tenant not found.' });
    }
    if (form.get('grant_type') !== 'client_credentials' || form.get('client_id') !== 'app-faults' || form.get('client_secret') !== ENTRA_SECRET || !form.get('scope')) {
      return jsonAnswer(res, 401, { error: 'invalid_client', error_description: 'AADSTS7000215: Invalid client secret provided.' });
    }
    jsonAnswer(res, 200, { token_type: 'Bearer', expires_in: 3599, access_token: `entra-token-${MARK}-${crypto.randomBytes(8).toString('hex')}` });
  },
  throttle: (_req, _body, res) =>
    jsonAnswer(res, 429, { error: 'temporarily_unavailable', error_description: 'AADSTS50196: The server terminated an operation because it encountered a client request loop.' }),
  make: ({ endpoint, timeoutMs, cache }) =>
    new MicrosoftEntraIdStrategy({
      tenantId: 'tenant-faults',
      clientId: 'app-faults',
      clientSecret: ENTRA_SECRET,
      authorityHost: endpoint,
      timeoutMs,
      cache,
      // Callers right after a failure would otherwise share it for up to 1 s (by design).
      failureBackoffMs: 0,
    }),
  call: (s, _ctx, n) =>
    s.getCredential({ name: 'entra', url: 'https://127.0.0.1:6443', authMetadata: { 'kubernetes.io/microsoft-entra-id-scope': `api://app-${n}/.default` } }, {}),
};

const googleMetadata = {
  name: 'Google metadata server',
  names: /metadata server/i,
  scheme: 'http',
  healthy(req, _body, res) {
    if (req.headers['metadata-flavor'] !== 'Google' || !req.url.startsWith('/computeMetadata/v1/instance/service-accounts/default/token')) {
      res.writeHead(403, { 'content-type': 'text/plain' });
      return res.end('Missing Metadata-Flavor: Google header');
    }
    res.writeHead(200, { 'content-type': 'application/json', 'metadata-flavor': 'Google' });
    res.end(JSON.stringify({ access_token: `ya29.${MARK}-${crypto.randomBytes(8).toString('hex')}`, expires_in: 3599, token_type: 'Bearer' }));
  },
  // One token per instance: `cache: false` makes every call reach the metadata server.
  make: ({ endpoint, timeoutMs }) =>
    new GoogleServiceAccountStrategy({ metadataHost: endpoint.replace(/^\w+:\/\//, ''), timeoutMs, cache: false }),
  call: (s) => s.getCredential({ name: 'gke', url: 'https://127.0.0.1:6443', authMetadata: {} }, {}),
};

// Azure managed identity, as `AzureIdentityStrategy`'s native chain reaches it. `PATH` has no
// `az`/`azd`, so no later source of the chain can answer instead.
const AZURE_IDENTITY_HEADER = `identity-header-${MARK}`;
const AKS_RESOURCE = '6dae42f8-4368-4678-94ff-3960e28e3630';
const managedIdentityToken = (res, resource, via) =>
  jsonAnswer(res, 200, {
    access_token: `${via}-token-${MARK}-${crypto.randomBytes(8).toString('hex')}`,
    expires_on: String(Math.floor(Date.now() / 1000) + 3600),
    expires_in: '3600',
    resource,
    token_type: 'Bearer',
  });
const azureCall = (s) => s.getCredential({ name: 'aks', url: 'https://127.0.0.1:6443', authMetadata: {} }, {});
const azureMake = (env) => ({ timeoutMs, cache }) =>
  new AzureIdentityStrategy({ env: { PATH: '/nonexistent', ...env }, timeoutMs, cache, failureBackoffMs: 0 });

const appService = {
  name: 'App Service managed identity endpoint',
  names: /App Service/i,
  scheme: 'http',
  healthy(req, _body, res) {
    const url = new URL(req.url, 'http://stand-in');
    if (req.headers['x-identity-header'] !== AZURE_IDENTITY_HEADER) {
      return jsonAnswer(res, 401, { error: { code: 'Unauthorized', message: 'X-IDENTITY-HEADER is missing or wrong' } });
    }
    if (url.pathname !== '/msi/token' || url.searchParams.get('api-version') !== '2019-08-01' || url.searchParams.get('resource') !== AKS_RESOURCE) {
      return jsonAnswer(res, 400, { error: { code: 'BadRequest', message: 'api-version and resource are required' } });
    }
    managedIdentityToken(res, AKS_RESOURCE, 'appservice');
  },
  make: (ctx) => azureMake({ IDENTITY_ENDPOINT: `${ctx.endpoint}/msi/token`, IDENTITY_HEADER: AZURE_IDENTITY_HEADER })(ctx),
  call: azureCall,
};

const azureImds = {
  name: 'Azure IMDS',
  names: /IMDS/,
  scheme: 'http',
  healthy(req, _body, res) {
    const url = new URL(req.url, 'http://stand-in');
    if (url.pathname !== '/metadata/identity/oauth2/token') return jsonAnswer(res, 404, { error: 'not_found' });
    // IMDS answers 400 without the header; the chain's probe relies on it.
    if (req.headers.metadata !== 'true') {
      return jsonAnswer(res, 400, { error: 'invalid_request', error_description: 'Required metadata header not specified' });
    }
    if (url.searchParams.get('api-version') !== '2018-02-01' || url.searchParams.get('resource') !== AKS_RESOURCE) {
      return jsonAnswer(res, 400, { error: 'invalid_request', error_description: 'Required query variable missing' });
    }
    managedIdentityToken(res, AKS_RESOURCE, 'imds');
  },
  make: (ctx) => azureMake({ AZURE_POD_IDENTITY_AUTHORITY_HOST: ctx.endpoint })(ctx),
  call: azureCall,
};

// A service-account key's JWT-bearer exchange at its `token_uri`; the stand-in verifies the
// assertion's RS256 signature with the key's public half, and its claims, as Google does. One
// key pair for the suite; the leak check's child process gets it through the environment.
const GOOGLE_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
const GOOGLE_EMAIL = `faults-${MARK}@test-project.iam.gserviceaccount.com`;
const googlePair = (() => {
  if (process.env.RELI_GOOGLE_KEY) return JSON.parse(process.env.RELI_GOOGLE_KEY);
  const { json, publicKey } = serviceAccountKey({ clientEmail: GOOGLE_EMAIL });
  const pair = { privateKey: json.private_key, publicKey, template: json };
  process.env.RELI_GOOGLE_KEY = JSON.stringify(pair);
  return pair;
})();
const googleTokenEndpoint = {
  name: 'Google token endpoint',
  names: /token endpoint/i,
  scheme: 'http',
  healthy(req, body, res) {
    const form = new URLSearchParams(body);
    const parts = (form.get('assertion') ?? '').split('.');
    let claims = {};
    try {
      claims = JSON.parse(Buffer.from(parts[1] ?? '', 'base64url').toString('utf8'));
    } catch {
      // not a JWT: refused below
    }
    const signed = parts.length === 3 && crypto.verify('RSA-SHA256', Buffer.from(`${parts[0]}.${parts[1]}`), googlePair.publicKey, Buffer.from(parts[2], 'base64url'));
    const now = Math.floor(Date.now() / 1000);
    if (
      req.method !== 'POST' ||
      req.url !== '/token' ||
      form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer' ||
      !signed ||
      claims.iss !== GOOGLE_EMAIL ||
      claims.aud !== `http://${req.headers.host}/token` ||
      !String(claims.scope).split(' ').includes(GOOGLE_SCOPE) ||
      !(claims.exp > now && claims.exp - claims.iat <= 3600)
    ) {
      return jsonAnswer(res, 400, { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' });
    }
    jsonAnswer(res, 200, { access_token: `ya29.jwt-${MARK}-${crypto.randomBytes(8).toString('hex')}`, expires_in: 3599, token_type: 'Bearer' });
  },
  // The endpoint is in the key (`token_uri`).
  make: ({ endpoint, timeoutMs, cache }) => {
    const key = { ...googlePair.template, private_key: googlePair.privateKey, token_uri: `${endpoint}/token` };
    return new GoogleServiceAccountStrategy({ credentials: JSON.stringify(key), timeoutMs, cache });
  },
  call: (s) => s.getCredential({ name: 'gke', url: 'https://127.0.0.1:6443', authMetadata: {} }, {}),
};

/** Every upstream, for the fault suite. New strategies add their upstreams here. */
const upstreams = [sts, imds, ecs, pinniped, entra, googleMetadata, appService, azureImds, googleTokenEndpoint];

module.exports = { upstreams, MARK };
