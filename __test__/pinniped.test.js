'use strict';
// PinnipedHelper and PinnipedStrategy against a loopback Concierge stand-in that issues real
// client certificates from its CA (see helpers/kube-api.js).

const crypto = require('node:crypto');
const fs = require('node:fs');
const https = require('node:https');
const os = require('node:os');
const path = require('node:path');
const { KubeApiStandIn } = require('./helpers/kube-api');
const { createCA } = require('./helpers/pki');
const { PinnipedHelper, PinnipedStrategy } = require('..');

const USERS = { 'alice-id-token-LEAKCANARY': 'alice', 'bob-id-token-LEAKCANARY': 'bob' };
for (let i = 0; i < 100; i++) USERS[`user-${i}-token-LEAKCANARY`] = `user-${i}`;
const AUTHENTICATOR = { apiGroup: 'authentication.concierge.pinniped.dev', kind: 'JWTAuthenticator', name: 'supervisor' };
const TMC_GROUP = 'login.concierge.pinniped.tmc.cloud.vmware.com/v1alpha1';

let api;
beforeAll(async () => {
  api = await new KubeApiStandIn({ concierge: { users: USERS, sharedCertFor: /^load-/ } }).start();
});
afterAll(() => api.stop());
beforeEach(() => {
  api.tcr.length = 0;
  api.requests.length = 0;
  api.conciergeFault = undefined;
});

const cluster = (extra = {}) => ({ name: 'pinniped-cluster', url: api.url, caData: api.caData, authMetadata: {}, ...extra });
const params = (token = 'alice-id-token-LEAKCANARY', extra = {}) => ({ clusterScopedIdToken: token, authenticator: AUTHENTICATOR, ...extra });
const cn = (pem) => new crypto.X509Certificate(pem).subject.match(/CN=([^\n]+)/)[1];

/** GET /api/v1/namespaces with a client certificate: who does the API server say we are? */
function whoAmI(cert, key) {
  return new Promise((resolve, reject) => {
    const req = https.get(`${api.url}/api/v1/namespaces`, { ca: api.caPem, cert, key }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, user: res.statusCode === 200 ? JSON.parse(body).metadata.user : undefined }));
    });
    req.on('error', reject);
  });
}

describe('PinnipedHelper (Backstage PinnipedHelper.test.ts, TLS Clusters)', () => {
  it('Should get certs data from Concierge', async () => {
    const certs = await new PinnipedHelper().tokenCredentialRequest(cluster(), params());
    expect(Object.keys(certs).sort()).toEqual(['cert', 'expirationTimestamp', 'key']);
    expect(cn(certs.cert)).toBe('alice');
    expect(Date.parse(certs.expirationTimestamp)).toBeGreaterThan(Date.now() + 4 * 60_000);
    expect(api.tcr).toHaveLength(1);
    const [request] = api.tcr;
    expect(request.path).toBe('/apis/login.concierge.pinniped.dev/v1alpha1/tokencredentialrequests');
    expect(request.raw).toBe(
      JSON.stringify({
        apiVersion: 'login.concierge.pinniped.dev/v1alpha1',
        kind: 'TokenCredentialRequest',
        spec: { authenticator: AUTHENTICATOR, token: 'alice-id-token-LEAKCANARY' },
      }),
    );
    expect(request.headers.accept).toBe('application/json');
    expect(request.headers['content-type']).toBe('application/json');
    expect(request.headers.authorization).toBeUndefined();
    // The certificate is a real one: the API server accepts it as alice.
    await expect(whoAmI(certs.cert, certs.key)).resolves.toEqual({ status: 200, user: 'alice' });
  });

  it('Should get certs data from TMC-flavoured Pinniped', async () => {
    const certs = await new PinnipedHelper().tokenCredentialRequest(
      cluster(),
      params('bob-id-token-LEAKCANARY', { tokenCredentialRequest: { apiGroup: TMC_GROUP } }),
    );
    expect(cn(certs.cert)).toBe('bob');
    expect(api.tcr[0].path).toBe(`/apis/${TMC_GROUP}/tokencredentialrequests`);
    expect(api.tcr[0].body.apiVersion).toBe(TMC_GROUP);
  });

  it('Should get an error when Concierge return an error', async () => {
    const p = new PinnipedHelper().tokenCredentialRequest(cluster(), params('stolen-token'));
    await expect(p).rejects.toThrow(Error);
    await expect(p).rejects.toThrow(
      `pinniped: ${api.url}/apis/login.concierge.pinniped.dev/v1alpha1/tokencredentialrequests: authentication failed (HTTP 201)`,
    );
    expect(api.tcr).toHaveLength(1);
  });

  it('replaces the cluster URL path, keeps its query', async () => {
    await new PinnipedHelper().tokenCredentialRequest(cluster({ url: `${api.url}/base/path?x=1` }), params());
    expect(api.tcr[0].path).toBe('/apis/login.concierge.pinniped.dev/v1alpha1/tokencredentialrequests');
    expect(api.tcr[0].search).toBe('?x=1');
  });

  it.each([
    ['status-401', /: Unauthorized \(HTTP 401\)$/],
    ['status-403', /: tokencredentialrequests.login.concierge.pinniped.dev is forbidden \(HTTP 403\)$/],
    ['status-404', /: the server could not find the requested resource \(HTTP 404\)$/],
    ['not-json', /: HTTP 500: the response is not JSON$/],
    ['no-status', /: HTTP 201: no credential in the response$/],
  ])('rejects with an Error carrying the reason on %s', async (fault, message) => {
    api.conciergeFault = fault;
    const p = new PinnipedHelper().tokenCredentialRequest(cluster(), params());
    await expect(p).rejects.toThrow(Error);
    await expect(p).rejects.toThrow(message);
  });

  it('rejects within its timeout when the Concierge never answers', async () => {
    api.conciergeFault = 'hang';
    const started = Date.now();
    await expect(new PinnipedHelper(undefined, { timeoutMs: 300 }).tokenCredentialRequest(cluster(), params())).rejects.toThrow(
      /no answer within 300 ms/,
    );
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('never puts the token into an error', async () => {
    api.conciergeFault = 'status-401';
    const err = await new PinnipedHelper().tokenCredentialRequest(cluster(), params('alice-id-token-LEAKCANARY')).catch((e) => e);
    expect(err.message).not.toContain('alice-id-token-LEAKCANARY');
  });

  it('rejects bad parameters with a TypeError naming the field', async () => {
    const helper = new PinnipedHelper();
    await expect(helper.tokenCredentialRequest(cluster(), { authenticator: AUTHENTICATOR })).rejects.toThrow(
      new TypeError('pinnipedParams.clusterScopedIdToken must be a string'),
    );
    await expect(helper.tokenCredentialRequest(cluster(), { clusterScopedIdToken: 't', authenticator: { kind: 'x' } })).rejects.toThrow(
      new TypeError('pinnipedParams.authenticator.apiGroup must be a string'),
    );
    await expect(helper.tokenCredentialRequest({ name: 'x', url: 5 }, params())).rejects.toThrow(
      new TypeError('clusterDetails.url must be a string'),
    );
  });
});

describe('PinnipedHelper TLS', () => {
  it('a wrong caData fails with a clear TLS error', async () => {
    const other = createCA('some-other-ca');
    const p = new PinnipedHelper().tokenCredentialRequest(cluster({ caData: Buffer.from(other.certPem).toString('base64') }), params());
    await expect(p).rejects.toThrow(/cannot connect: .*(UnknownIssuer|certificate)/i);
    expect(api.tcr).toHaveLength(0);
  });

  it('with no CA the system roots apply and the loopback CA is refused', async () => {
    await expect(new PinnipedHelper().tokenCredentialRequest(cluster({ caData: undefined }), params())).rejects.toThrow(/cannot connect/);
  });

  it('skipTLSVerify works', async () => {
    const certs = await new PinnipedHelper().tokenCredentialRequest(cluster({ caData: undefined, skipTLSVerify: true }), params());
    expect(cn(certs.cert)).toBe('alice');
  });

  it('caFile wins over caData', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ca-'));
    const caFile = path.join(dir, 'ca.pem');
    fs.writeFileSync(caFile, api.caPem);
    const wrong = Buffer.from(createCA('wrong').certPem).toString('base64');
    try {
      const certs = await new PinnipedHelper().tokenCredentialRequest(cluster({ caData: wrong, caFile }), params());
      expect(cn(certs.cert)).toBe('alice');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('PinnipedStrategy', () => {
  const auth = (token) => ({ pinniped: { clusteridtoken: token } });

  it('returns an x509 client certificate for the user in requestAuth.pinniped.clusteridtoken', async () => {
    const c = await new PinnipedStrategy().getCredential(cluster(), auth('alice-id-token-LEAKCANARY'));
    expect(Object.keys(c).sort()).toEqual(['cert', 'key', 'type']);
    expect(c.type).toBe('x509 client certificate');
    expect(cn(c.cert)).toBe('alice');
    await expect(whoAmI(c.cert, c.key)).resolves.toEqual({ status: 200, user: 'alice' });
  });

  it('rejects without a token', async () => {
    for (const a of [{}, { pinniped: {} }, { pinniped: 'x' }, undefined]) {
      await expect(new PinnipedStrategy().getCredential(cluster(), a)).rejects.toThrow(
        'Pinniped cluster-scoped ID token not found under auth.pinniped.clusteridtoken in request body',
      );
    }
  });

  it('presents the audience and validates its annotations', () => {
    const s = new PinnipedStrategy();
    expect(s.presentAuthMetadata({ 'kubernetes.io/x-pinniped-audience': 'aud-1', other: 'x' })).toStrictEqual({ audience: 'aud-1' });
    expect(s.presentAuthMetadata({})).toStrictEqual({});
    expect(s.validateCluster({ 'kubernetes.io/x-pinniped-authenticator-name': 'tmc' })).toEqual([]);
    const [typeError] = s.validateCluster({ 'kubernetes.io/x-pinniped-authenticator-name': 5 });
    expect(typeError).toBeInstanceOf(TypeError);
    expect(typeError.message).toBe("authMetadata['kubernetes.io/x-pinniped-authenticator-name'] must be a string");
    const [groupError] = s.validateCluster({ 'kubernetes.io/x-pinniped-token-credential-request-api-group': 'login.concierge.x' });
    expect(groupError.message).toMatch(/must be a group and version/);
  });

  it('per-cluster annotations choose the authenticator and API group', async () => {
    const s = new PinnipedStrategy({ authenticator: { name: 'wrong-name' } });
    await expect(s.getCredential(cluster(), auth('alice-id-token-LEAKCANARY'))).rejects.toThrow(/authentication failed/);
    const annotated = cluster({
      authMetadata: {
        'kubernetes.io/x-pinniped-authenticator-name': 'supervisor',
        'kubernetes.io/x-pinniped-token-credential-request-api-group': TMC_GROUP,
      },
    });
    const c = await s.getCredential(annotated, auth('alice-id-token-LEAKCANARY'));
    expect(cn(c.cert)).toBe('alice');
    expect(api.tcr.at(-1).path).toBe(`/apis/${TMC_GROUP}/tokencredentialrequests`);
    expect(api.tcr.at(-1).body.spec.authenticator.name).toBe('supervisor');
  });

  it('1000 concurrent calls for one user and cluster make 1 TokenCredentialRequest', async () => {
    const s = new PinnipedStrategy();
    const results = await Promise.all(Array.from({ length: 1000 }, () => s.getCredential(cluster(), auth('alice-id-token-LEAKCANARY'))));
    expect(api.tcr).toHaveLength(1);
    expect(new Set(results.map((r) => r.cert)).size).toBe(1);
    expect(s.cachedEntries).toBe(1);
  });

  it('100 users concurrently make 100 requests and each gets its own certificate', async () => {
    // The stand-in signs 100 certificates in JS; on a busy 2-core machine that can take
    // longer than the 10 s default, which is not what this test is about.
    const s = new PinnipedStrategy({ timeoutMs: 45_000 });
    const calls = [];
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 100; i++) {
        calls.push(s.getCredential(cluster(), auth(`user-${i}-token-LEAKCANARY`)).then((c) => [i, c]));
      }
    }
    const results = await Promise.all(calls);
    expect(api.tcr).toHaveLength(100);
    for (const [i, c] of results) expect(cn(c.cert)).toBe(`user-${i}`);
    // And again, later: all from the cache.
    await Promise.all(Array.from({ length: 100 }, (_, i) => s.getCredential(cluster(), auth(`user-${i}-token-LEAKCANARY`))));
    expect(api.tcr).toHaveLength(100);
  });

  it('reads caData only when it has to ask the Concierge, not on a cache hit', async () => {
    const s = new PinnipedStrategy();
    let reads = 0;
    const counted = () => {
      const cd = cluster();
      const caData = cd.caData;
      delete cd.caData;
      Object.defineProperty(cd, 'caData', { enumerable: true, get: () => (reads++, caData) });
      return cd;
    };
    const first = await s.getCredential(counted(), auth('alice-id-token-LEAKCANARY'));
    expect(reads).toBe(1);
    for (let i = 0; i < 10; i++) expect(await s.getCredential(counted(), auth('alice-id-token-LEAKCANARY'))).toStrictEqual(first);
    expect(reads).toBe(1);
    expect(api.tcr).toHaveLength(1);
  });

  it('the same user on two clusters gets two certificates', async () => {
    const s = new PinnipedStrategy();
    await s.getCredential(cluster(), auth('alice-id-token-LEAKCANARY'));
    await s.getCredential(cluster({ url: `${api.url}/other` }), auth('alice-id-token-LEAKCANARY'));
    expect(api.tcr).toHaveLength(2);
  });

  it('an entry close to expiry is refetched', async () => {
    // 34 s lifetime - 30 s margin (- up to 1 s of timestamp truncation): cached for 3-4 s.
    const shortLived = await new KubeApiStandIn({ concierge: { users: USERS, lifetimeMs: 34_000 } }).start();
    try {
      const s = new PinnipedStrategy();
      const cd = { name: 'c', url: shortLived.url, caData: shortLived.caData, authMetadata: {} };
      await s.getCredential(cd, auth('alice-id-token-LEAKCANARY'));
      await s.getCredential(cd, auth('alice-id-token-LEAKCANARY'));
      expect(shortLived.tcr).toHaveLength(1);
      await new Promise((r) => setTimeout(r, 4_500));
      await s.getCredential(cd, auth('alice-id-token-LEAKCANARY'));
      expect(shortLived.tcr).toHaveLength(2);
    } finally {
      await shortLived.stop();
    }
  });

  it('failures are not cached', async () => {
    const s = new PinnipedStrategy();
    await expect(s.getCredential(cluster(), auth('unknown-token'))).rejects.toThrow(/authentication failed/);
    await expect(s.getCredential(cluster(), auth('unknown-token'))).rejects.toThrow(/authentication failed/);
    expect(api.tcr).toHaveLength(2);
    api.conciergeFault = 'status-401';
    await expect(s.getCredential(cluster(), auth('alice-id-token-LEAKCANARY'))).rejects.toThrow(/Unauthorized/);
    api.conciergeFault = undefined;
    expect(cn((await s.getCredential(cluster(), auth('alice-id-token-LEAKCANARY'))).cert)).toBe('alice');
  });

  it('cache: false asks the Concierge every time', async () => {
    const s = new PinnipedStrategy({ cache: false });
    await s.getCredential(cluster(), auth('alice-id-token-LEAKCANARY'));
    await s.getCredential(cluster(), auth('alice-id-token-LEAKCANARY'));
    expect(api.tcr).toHaveLength(2);
    expect(s.cachedEntries).toBe(0);
  });

  it('the LRU bound holds under 50,000 distinct users, over a bounded number of connections', async () => {
    const s = new PinnipedStrategy();
    api.peakConnections = api.sockets.size;
    api.connectionsOpened = 0;
    const users = 50_000;
    let next = 0;
    async function worker() {
      while (next < users) {
        const i = next++;
        await s.getCredential(cluster(), auth(`load-${i}-LEAKCANARY`));
      }
    }
    await Promise.all(Array.from({ length: 200 }, worker));
    expect(api.tcr).toHaveLength(users);
    // 200 callers, at most 16 requests in flight to one upstream (src/http.rs) and as many
    // idle connections kept. Unbounded, hyper's background connects (a request that finds
    // no idle connection starts one, and it goes on after the request got another) had left
    // ~12,000 connections half-open and the process out of file descriptors. Bounded, ~45
    // are opened in all, in the first burst, while the first connections are still in their
    // TLS handshakes; the stand-in sees a closed one go a little late.
    expect(api.connectionsOpened).toBeLessThanOrEqual(200);
    expect(api.peakConnections).toBeLessThanOrEqual(64);
    expect(s.cachedEntries).toBe(10_000);
    // The most recent users are still cached, the earliest were evicted.
    await s.getCredential(cluster(), auth(`load-${users - 1}-LEAKCANARY`));
    expect(api.tcr).toHaveLength(users);
    await s.getCredential(cluster(), auth('load-0-LEAKCANARY'));
    expect(api.tcr).toHaveLength(users + 1);
  }, 120_000);

  it('validates its options', () => {
    expect(() => new PinnipedStrategy({ cacheSize: -1 })).toThrow(
      new TypeError('options.cacheSize must be a whole number from 0 to 10000000'),
    );
    expect(() => new PinnipedStrategy({ authenticator: 'x' })).toThrow(new TypeError('options.authenticator must be an object'));
    expect(() => new PinnipedStrategy({ authenticator: { name: 7 } })).toThrow(
      new TypeError('options.authenticator.name must be a string'),
    );
  });
});
