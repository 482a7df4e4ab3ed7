'use strict';
// GoogleServiceAccountStrategy against loopback stand-ins for Google's token endpoint and
// metadata server (helpers/google-standin.js), which verify the RS256 JWT-bearer assertion,
// the refresh-token grant and the Metadata-Flavor header as Google does.

const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { ConfigReader } = require('@backstage/config');
const { GoogleServiceAccountStrategy, strategyClasses, notYetNative } = require('..');
const { GoogleStandIn, serviceAccountKey } = require('./helpers/google-standin');
const { setEnv } = require('./helpers/real-env');

const cluster = { name: 'gke', url: 'https://127.0.0.1:6443', authMetadata: {} };
const PARSE = 'Failed to parse Google Service Account credentials from config';
const NO_TOKEN = 'Unable to obtain access token for Google Cloud authentication';
const ADC_VARS = ['GOOGLE_APPLICATION_CREDENTIALS', 'CLOUDSDK_CONFIG', 'GCE_METADATA_HOST', 'HOME'];

let google;
let key;
let tmp;
let savedEnv;

/** Config as Backstage passes it: the root `Config` holding the key as a JSON string. */
const configWith = (credentials) =>
  new ConfigReader(credentials === undefined ? {} : { kubernetes: { googleServiceAccountCredentials: credentials } });

/** A strategy on the configured key; `metadataHost` keeps a stray ADC lookup on loopback. */
const fromKey = (json = key, opts = {}) =>
  new GoogleServiceAccountStrategy({
    config: configWith(JSON.stringify(json)),
    metadataHost: google.metadataHost,
    ...opts,
  });

async function token(strategy) {
  const c = await strategy.getCredential(cluster, {});
  expect(c.type).toBe('bearer token');
  return c.token;
}

/** The message of the rejection, after checking it is an Error of this realm. */
async function rejection(promise) {
  const err = await promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e) => e,
  );
  expect(err).toBeInstanceOf(Error);
  return err.message;
}

function writeJson(name, value) {
  const file = path.join(tmp, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value));
  return file;
}

/** No ADC variable set, HOME at an empty directory: a clean Application Default Credentials slate. */
async function cleanAdcEnv(vars = {}) {
  const home = path.join(tmp, `home-${Math.random().toString(36).slice(2)}`);
  fs.mkdirSync(home);
  await setEnv({
    GOOGLE_APPLICATION_CREDENTIALS: null,
    CLOUDSDK_CONFIG: null,
    GCE_METADATA_HOST: google.metadataHost,
    HOME: home,
    ...vars,
  });
  return home;
}

beforeAll(async () => {
  savedEnv = Object.fromEntries(ADC_VARS.map((k) => [k, process.env[k] ?? null]));
  google = await new GoogleStandIn().start();
  key = google.newServiceAccount();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gsa-'));
  await cleanAdcEnv();
});

afterAll(async () => {
  await setEnv(savedEnv);
  await google.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

beforeEach(() => {
  google.fault = undefined;
  google.requests.length = 0;
});

it('is registered under googleServiceAccount', () => {
  expect(strategyClasses.googleServiceAccount).toBe(GoogleServiceAccountStrategy);
  expect(notYetNative).not.toContain('googleServiceAccount');
  expect(new GoogleServiceAccountStrategy().kind).toBe('googleServiceAccount');
});

// The stand-in is only as good as its checks: each claim it verifies is proven here with a
// hand-signed assertion that breaks exactly that claim.
describe('the token endpoint stand-in', () => {
  function assertion(claims, signingKey = key.private_key) {
    const now = Math.floor(Date.now() / 1000);
    const enc = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const body = {
      iss: key.client_email,
      scope: 'https://www.googleapis.com/auth/cloud-platform',
      aud: google.tokenUri,
      iat: now,
      exp: now + 3600,
      ...claims,
    };
    const signed = `${enc({ alg: 'RS256', typ: 'JWT' })}.${enc(body)}`;
    return `${signed}.${crypto.sign('RSA-SHA256', Buffer.from(signed), signingKey).toString('base64url')}`;
  }

  async function post(a) {
    const res = await fetch(google.tokenUri, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: a }),
    });
    return { status: res.status, body: await res.json() };
  }

  it('issues a token for a correct assertion', async () => {
    const r = await post(assertion({}));
    expect(r.status).toBe(200);
    expect(google.subjectOf(r.body.access_token)).toBe(key.client_email);
  });

  it.each([
    ['signature (another key)', {}, () => serviceAccountKey().json.private_key, 'Invalid JWT Signature.'],
    ['aud', { aud: 'https://oauth2.googleapis.com/token' }, undefined, /aud/],
    ['scope', { scope: 'openid' }, undefined, /scope/],
    ['iss', { iss: 'someone-else@example.com' }, undefined, /iss/],
    ['exp in the past', { iat: Math.floor(Date.now() / 1000) - 200, exp: Math.floor(Date.now() / 1000) - 100 }, undefined, /exp/],
    ['lifetime over 1 h', { exp: Math.floor(Date.now() / 1000) + 7200 }, undefined, /exp/],
  ])('refuses an assertion with a wrong %s: 400 invalid_grant', async (_what, claims, signer, reason) => {
    const r = await post(assertion(claims, signer ? signer() : undefined));
    expect(r.status).toBe(400);
    expect(r.body.error).toBe('invalid_grant');
    expect(r.body.error_description).toMatch(reason);
  });
});

// Ports of Backstage's GoogleServiceAccountStrategy.test.ts (contract section 11). Backstage
// mocks the Google client; here the stand-in plays Google, so each case's "client constructed
// with the parsed credentials / with none" becomes "the token endpoint saw an assertion
// signed by that key / the ADC source was used".
describe('GoogleServiceAccountStrategy (Backstage cases)', () => {
  describe('constructor', () => {
    it('should read credentials from config when provided', () => {
      expect(() => new GoogleServiceAccountStrategy({ config: configWith(JSON.stringify(key)) })).not.toThrow();
    });

    it('should work without credentials in config', () => {
      expect(() => new GoogleServiceAccountStrategy({ config: new ConfigReader({ kubernetes: {} }) })).not.toThrow();
    });

    it('should work with empty config', () => {
      expect(() => new GoogleServiceAccountStrategy({ config: new ConfigReader({}) })).not.toThrow();
    });
  });

  describe('#getCredential', () => {
    it('should use credentials from config when provided', async () => {
      const t = await token(fromKey());
      expect(google.subjectOf(t)).toBe(key.client_email);
      expect(google.requests).toEqual([expect.objectContaining({ kind: 'token', grant: 'urn:ietf:params:oauth:grant-type:jwt-bearer', ok: true })]);
    });

    it('should fall back to default credentials when no config provided', async () => {
      const other = google.newServiceAccount({ clientEmail: 'adc-sa@test-project.iam.gserviceaccount.com' });
      await cleanAdcEnv({ GOOGLE_APPLICATION_CREDENTIALS: writeJson('adc-key.json', other) });
      try {
        const t = await token(new GoogleServiceAccountStrategy({ config: configWith(undefined) }));
        expect(google.subjectOf(t)).toBe('adc-sa@test-project.iam.gserviceaccount.com');
      } finally {
        await cleanAdcEnv();
      }
    });

    it('should throw error when JSON parsing fails', async () => {
      const s = new GoogleServiceAccountStrategy({ config: configWith('invalid-json') });
      expect(await rejection(s.getCredential(cluster, {}))).toContain(PARSE);
      expect(google.requests).toEqual([]);
    });

    it.each([
      ['null', 'null-token'],
      ['undefined', 'no-token'],
      ['empty string', 'empty-token'],
    ])('should throw error when access token is %s', async (_what, fault) => {
      google.fault = fault;
      const message = await rejection(fromKey().getCredential(cluster, {}));
      expect(message).toContain(NO_TOKEN);
      expect(message).toContain(`token endpoint ${google.tokenUri}`);
    });

    it('should handle malformed JSON with specific error message', async () => {
      const s = new GoogleServiceAccountStrategy({ config: configWith('{ invalid json }') });
      expect(await rejection(s.getCredential(cluster, {}))).toMatch(
        /Failed to parse Google Service Account credentials from config: Unexpected token/,
      );
    });

    it('should handle client creation errors', async () => {
      // The real client's construction fails on a key without a private key.
      const { private_key: _omitted, ...noKey } = key;
      const message = await rejection(fromKey(noKey).getCredential(cluster, {}));
      expect(message).toBe(`${PARSE}: The incoming JSON object does not contain a private_key field`);
      expect(google.requests).toEqual([]);
    });

    it('should handle getAccessToken errors', async () => {
      google.fault = { status: 400, body: { error: 'invalid_grant', error_description: 'Token fetch failed' } };
      const message = await rejection(fromKey().getCredential(cluster, {}));
      expect(message).toContain('Token fetch failed');
      expect(message).toContain('HTTP 400: invalid_grant');
    });
  });

  it('#validateCluster should return empty array', () => {
    expect(fromKey().validateCluster({})).toEqual([]);
  });

  it('#presentAuthMetadata should return empty object', () => {
    expect(fromKey().presentAuthMetadata({ test: 'metadata' })).toEqual({});
  });
});

describe('configured credentials', () => {
  it('accepts plain root-config JSON and a `credentials` option', async () => {
    const plain = new GoogleServiceAccountStrategy({
      config: { kubernetes: { googleServiceAccountCredentials: JSON.stringify(key) } },
    });
    expect(google.subjectOf(await token(plain))).toBe(key.client_email);
    const direct = new GoogleServiceAccountStrategy({ credentials: JSON.stringify(key) });
    expect(google.subjectOf(await token(direct))).toBe(key.client_email);
  });

  it('a key signed by another key pair is refused by the endpoint, and the error says why', async () => {
    const impostor = { ...key, private_key: serviceAccountKey().json.private_key };
    const message = await rejection(fromKey(impostor).getCredential(cluster, {}));
    expect(message).toBe(`googleServiceAccount: token endpoint ${google.tokenUri}: HTTP 400: invalid_grant: Invalid JWT Signature.`);
  });

  it.each([
    ['invalid-json', /^Failed to parse Google Service Account credentials from config: Unexpected token 'i' in JSON at position 0/],
    ['{"type": "service_account",', /: Unexpected end of JSON input$/],
    ['{} trailing', /: Unexpected non-whitespace character after JSON at position 3$/],
    ['[]', /: the credentials must be a JSON object$/],
    ['{"private_key": "x"}', /: The incoming JSON object does not contain a client_email field$/],
    ['{"client_email": "a@b", "private_key": "LEAKCANARY-not-a-pem"}', /: the private_key field is not a PEM RSA private key$/],
    ['{"type": "external_account"}', /: credential type 'external_account' is not supported/],
    ['{"type": "authorized_user", "client_id": "c"}', /: The incoming JSON object does not contain a client_secret field$/],
    ['{"client_email": "a@b", "private_key": "k", "token_uri": "file:///etc/passwd"}', /: the token_uri field must be an http\(s\) URL$/],
  ])('bad credentials %s: a clear Error on every call, no request', async (text, expected) => {
    const s = new GoogleServiceAccountStrategy({ config: configWith(text) });
    for (let i = 0; i < 2; i++) expect(await rejection(s.getCredential(cluster, {}))).toMatch(expected);
    expect(google.requests).toEqual([]);
  });

  it('a parse error quotes no part of the key, even when the key itself breaks the JSON', async () => {
    const pemBody = key.private_key.split('\n').slice(1, -2).join('\n');
    // A key pasted with raw newlines inside the JSON string: invalid JSON.
    const text = `{"type":"service_account","client_email":"${key.client_email}","private_key":"LEAKCANARY${key.private_key}"}`;
    const message = await rejection(new GoogleServiceAccountStrategy({ config: configWith(text) }).getCredential(cluster, {}));
    expect(message).toMatch(/^Failed to parse Google Service Account credentials from config: Bad control character in string literal in JSON at position \d+/);
    expect(message).not.toContain('LEAKCANARY');
    for (const line of pemBody.split('\n')) expect(message).not.toContain(line.slice(0, 16));
  });

  it('an empty credentials string means "not configured" (Backstage tests it for truthiness)', async () => {
    await cleanAdcEnv();
    // Backstage's ConfigReader refuses '' itself; plain config JSON can hold it.
    const t = await token(new GoogleServiceAccountStrategy({ config: { kubernetes: { googleServiceAccountCredentials: '' } } }));
    expect(google.subjectOf(t)).toBe(google.metadataAccount);
  });
});

describe('Application Default Credentials', () => {
  afterEach(() => cleanAdcEnv());

  it('GOOGLE_APPLICATION_CREDENTIALS with an authorized_user file: the refresh-token grant', async () => {
    const user = google.newAuthorizedUser('dev@example.com');
    await cleanAdcEnv({ GOOGLE_APPLICATION_CREDENTIALS: writeJson('user.json', user) });
    const t = await token(new GoogleServiceAccountStrategy());
    expect(google.subjectOf(t)).toBe('dev@example.com');
    expect(google.requests).toEqual([expect.objectContaining({ grant: 'refresh_token', ok: true })]);
  });

  it('a revoked refresh token: the error names the endpoint and OAuth error, not the secrets', async () => {
    const user = { ...google.newAuthorizedUser(), refresh_token: '1//revoked-LEAKCANARY' };
    await cleanAdcEnv({ GOOGLE_APPLICATION_CREDENTIALS: writeJson('revoked.json', user) });
    const message = await rejection(new GoogleServiceAccountStrategy().getCredential(cluster, {}));
    expect(message).toBe(`googleServiceAccount: token endpoint ${google.tokenUri}: HTTP 400: invalid_grant: Bad Request`);
  });

  it('GOOGLE_APPLICATION_CREDENTIALS wins over the gcloud ADC file, which wins over the metadata server', async () => {
    const envKey = google.newServiceAccount({ clientEmail: 'env@test-project.iam.gserviceaccount.com' });
    const gcloudKey = google.newServiceAccount({ clientEmail: 'gcloud@test-project.iam.gserviceaccount.com' });
    const home = await cleanAdcEnv();
    writeJson(path.join(path.basename(home), '.config/gcloud/application_default_credentials.json'), gcloudKey);
    await setEnv({ GOOGLE_APPLICATION_CREDENTIALS: writeJson('env.json', envKey) });
    expect(google.subjectOf(await token(new GoogleServiceAccountStrategy()))).toBe('env@test-project.iam.gserviceaccount.com');
    await setEnv({ GOOGLE_APPLICATION_CREDENTIALS: null });
    expect(google.subjectOf(await token(new GoogleServiceAccountStrategy()))).toBe('gcloud@test-project.iam.gserviceaccount.com');
    fs.rmSync(path.join(home, '.config'), { recursive: true });
    expect(google.subjectOf(await token(new GoogleServiceAccountStrategy()))).toBe(google.metadataAccount);
  });

  it('CLOUDSDK_CONFIG names the gcloud configuration directory', async () => {
    const user = google.newAuthorizedUser('gcloud-user@example.com');
    const dir = path.dirname(writeJson('sdk-config/application_default_credentials.json', user));
    await cleanAdcEnv({ CLOUDSDK_CONFIG: dir });
    expect(google.subjectOf(await token(new GoogleServiceAccountStrategy()))).toBe('gcloud-user@example.com');
  });

  it('a missing GOOGLE_APPLICATION_CREDENTIALS file is an error naming the file and the variable', async () => {
    const missing = path.join(tmp, 'nope.json');
    await cleanAdcEnv({ GOOGLE_APPLICATION_CREDENTIALS: missing });
    const message = await rejection(new GoogleServiceAccountStrategy().getCredential(cluster, {}));
    expect(message).toContain(`cannot read the credentials file ${missing} (GOOGLE_APPLICATION_CREDENTIALS)`);
    expect(google.requests).toEqual([]);
  });

  it('a broken credentials file is an error naming the file, quoting none of it', async () => {
    const file = writeJson('broken.json', `{"private_key": "LEAKCANARY\n"}`);
    await cleanAdcEnv({ GOOGLE_APPLICATION_CREDENTIALS: file });
    const message = await rejection(new GoogleServiceAccountStrategy().getCredential(cluster, {}));
    expect(message).toMatch(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(GOOGLE_APPLICATION_CREDENTIALS\\): Bad control character`));
    expect(message).not.toContain('LEAKCANARY');
  });

  it('the metadata server: GCE_METADATA_HOST, the Metadata-Flavor header and the cloud-platform scope', async () => {
    await cleanAdcEnv();
    const t = await token(new GoogleServiceAccountStrategy());
    expect(google.subjectOf(t)).toBe(google.metadataAccount);
    expect(google.requests).toEqual([expect.objectContaining({ kind: 'metadata', ok: true })]);
    // The stand-in does check the header, as the real server does.
    const bare = await fetch(`${google.url}/computeMetadata/v1/instance/service-accounts/default/token`);
    expect(bare.status).toBe(403);
  });

  it('the metadataHost option overrides GCE_METADATA_HOST', async () => {
    await cleanAdcEnv({ GCE_METADATA_HOST: '127.0.0.1:1' });
    const t = await token(new GoogleServiceAccountStrategy({ metadataHost: `http://${google.metadataHost}` }));
    expect(google.subjectOf(t)).toBe(google.metadataAccount);
  });

  it('no credentials anywhere: an Error naming the metadata server and what was looked for', async () => {
    await cleanAdcEnv({ GCE_METADATA_HOST: '127.0.0.1:1' });
    const message = await rejection(new GoogleServiceAccountStrategy().getCredential(cluster, {}));
    expect(message).toMatch(/^googleServiceAccount: metadata server http:\/\/127\.0\.0\.1:1\/computeMetadata\/v1\/instance\/service-accounts\/default\/token: cannot connect/);
    expect(message).toContain('Could not load the default credentials');
  });
});

describe('token cache', () => {
  it('a second call is served from the cache, on the JS thread, with no request', async () => {
    const s = fromKey();
    const first = s.credentialNow(cluster, {});
    // A miss returns a promise (made by native code, so not of this realm's Promise class).
    expect(typeof first.then).toBe('function');
    const t = (await first).token;
    // A cache hit settles in the first poll: the native call returns the token itself.
    expect(s.credentialNow(cluster, {})).toBe(t);
    expect(await token(s)).toBe(t);
    expect(google.tokenRequests()).toBe(1);
    expect(s.cachedEntries).toBe(1);
  });

  it('cache: false fetches on every call, as Backstage', async () => {
    const s = fromKey(key, { cache: false });
    const a = await token(s);
    const b = await token(s);
    expect(a).not.toBe(b);
    expect(google.tokenRequests()).toBe(2);
  });

  it('1000 concurrent calls make exactly one token request', async () => {
    google.delayMs = 50;
    try {
      const s = fromKey();
      const tokens = await Promise.all(Array.from({ length: 1000 }, () => token(s)));
      expect(new Set(tokens).size).toBe(1);
      expect(google.tokenRequests()).toBe(1);
    } finally {
      google.delayMs = 0;
    }
  });

  it('refreshes once inside the 5-minute window, and serves the old token if that refresh fails', async () => {
    // 302 s tokens enter the 5-minute refresh window 2 s after they are issued.
    google.lifetimeS = 302;
    try {
      const s = fromKey();
      const first = await token(s);
      expect(await token(s)).toBe(first);
      expect(google.tokenRequests()).toBe(1);
      await new Promise((r) => setTimeout(r, 2100));
      const refreshed = await Promise.all(Array.from({ length: 50 }, () => token(s)));
      expect(new Set(refreshed).size).toBe(1);
      expect(refreshed[0]).not.toBe(first);
      expect(google.tokenRequests()).toBe(2);
      await new Promise((r) => setTimeout(r, 2100));
      google.fault = '500';
      // Still valid for ~5 minutes: the failed refresh falls back to it.
      expect(await token(s)).toBe(refreshed[0]);
      expect(google.tokenRequests()).toBe(3);
    } finally {
      google.lifetimeS = 3600;
    }
  });
});

describe('faults', () => {
  const cases = [
    ['500', /HTTP 500: internal_failure: Backend Error$/],
    ['429', /HTTP 429: rate_limit_exceeded: Rate Limit Exceeded$/],
    ['not-json', /HTTP 200: the response is not a JSON object$/],
    ['no-token', /the response has no access_token\)$/],
  ];

  describe.each([
    ['token endpoint', () => fromKey(key, { timeoutMs: 1000 }), () => `token endpoint ${google.tokenUri}`],
    [
      'metadata server',
      () => new GoogleServiceAccountStrategy({ metadataHost: google.metadataHost, timeoutMs: 1000 }),
      () => `metadata server http://${google.metadataHost}/computeMetadata/v1/instance/service-accounts/default/token`,
    ],
  ])('%s', (_name, make, endpoint) => {
    it.each(cases)('%s: a clear Error naming the endpoint, and the next call succeeds', async (fault, expected) => {
      const s = make();
      google.fault = fault;
      const message = await rejection(s.getCredential(cluster, {}));
      expect(message).toContain(endpoint());
      expect(message).toMatch(expected);
      expect(message).not.toContain('LEAKCANARY');
      google.fault = undefined;
      expect(google.subjectOf(await token(s))).toBeDefined();
    });

    it('no answer: rejects within the timeout + 1 s, naming the endpoint; then recovers', async () => {
      const s = make();
      google.fault = 'hang';
      const started = Date.now();
      const message = await rejection(s.getCredential(cluster, {}));
      expect(Date.now() - started).toBeLessThan(2000);
      expect(message.startsWith(`googleServiceAccount: ${endpoint()}: no answer within 1000 ms`)).toBe(true);
      google.fault = undefined;
      expect(google.subjectOf(await token(s))).toBeDefined();
    });
  });
});
