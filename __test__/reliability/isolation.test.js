'use strict';
// Per-user isolation: 100 users, each with its own OIDC token for Pinniped, 10,000 calls
// interleaved and concurrent across 5 clusters (5 Concierge stand-ins, each with its own CA,
// each binding the certificate's CN to the token's user). Every credential must be the
// caller's own, issued by the cluster asked. Figures go to results/isolation.json.

const crypto = require('node:crypto');
const { KubeApiStandIn } = require('../helpers/kube-api');
const { PinnipedStrategy, AksStrategy, OidcStrategy, GoogleStrategy } = require('../..');
const { MARK, FULL, observe, leaks, record } = require('./record');

// The CI subset has fewer users: the stand-ins sign each user's certificate (RSA, in JS).
const USERS = FULL ? 100 : 30;
const CLUSTERS = 5;
const CALLS = FULL ? 10_000 : 3_000;
const tokenOf = (u) => `oidc-${u}-${MARK}-${crypto.randomBytes(6).toString('hex')}`;
const users = Array.from({ length: USERS }, (_, i) => ({ name: `user-${i}`, token: tokenOf(i) }));

let clusters;
beforeAll(async () => {
  const concierge = { users: Object.fromEntries(users.map((u) => [u.token, u.name])), reuseCertificates: true };
  clusters = await Promise.all(Array.from({ length: CLUSTERS }, () => new KubeApiStandIn({ concierge }).start()));
  // Certificates are signed up front: signing blocks a stand-in's event loop, and 500 at once
  // would time out TLS handshakes of the stand-in, not test the client.
  for (const c of clusters) {
    for (const u of users) c.concierge.issued.set(u.name, c.clientCert(u.name, c.concierge.lifetimeMs));
  }
}, 300_000);
afterAll(async () => {
  await Promise.all(clusters.map((c) => c.stop()));
  expect(leaks()).toEqual([]);
});

/** A deterministic interleaving: every (user, cluster) pair many times, shuffled. */
function schedule(n) {
  const rng = crypto.createHash('sha256');
  return Array.from({ length: n }, (_, i) => {
    const h = rng.copy().update(String(i)).digest();
    return { user: users[h.readUInt16BE(0) % USERS], cluster: h[2] % CLUSTERS };
  });
}

it(`${CALLS.toLocaleString('en')} interleaved concurrent Pinniped calls by ${USERS} users on ${CLUSTERS} clusters: zero cross-user results`, async () => {
  const strategy = new PinnipedStrategy({ cacheSize: 1000, timeoutMs: 30_000 });
  const plan = schedule(CALLS);
  const started = Date.now();
  const results = await Promise.allSettled(
    plan.map(({ user, cluster }) =>
      strategy.getCredential(
        { name: `cluster-${cluster}`, url: clusters[cluster].url, caData: clusters[cluster].caData, authMetadata: {} },
        { pinniped: { clusteridtoken: user.token } },
      ),
    ),
  );
  const issuerCn = clusters.map((c) => new crypto.X509Certificate(c.caPem).subject);
  let crossUser = 0;
  let crossCluster = 0;
  let failed = 0;
  results.forEach((r, i) => {
    if (r.status === 'rejected') {
      failed += 1;
      observe("isolation", r.reason);
      return;
    }
    const cert = new crypto.X509Certificate(r.value.cert);
    if (cert.subject !== `CN=${plan[i].user.name}`) crossUser += 1;
    if (cert.issuer !== issuerCn[plan[i].cluster] || !cert.verify(new crypto.X509Certificate(clusters[plan[i].cluster].caPem).publicKey)) crossCluster += 1;
  });
  const tcr = clusters.reduce((n, c) => n + c.tcr.length, 0);
  record('isolation', { users: USERS, clusters: CLUSTERS, calls: CALLS, crossUser, crossCluster, failed, tokenCredentialRequests: tcr, ms: Date.now() - started });
  expect({ failed, crossUser, crossCluster }).toEqual({ failed: 0, crossUser: 0, crossCluster: 0 });
  // Single flight per (user, cluster): at most one TokenCredentialRequest each.
  expect(tcr).toBeLessThanOrEqual(USERS * CLUSTERS);
}, 300_000);

it.each([
  ['AksStrategy', () => new AksStrategy(), (t) => ({ aks: t }), {}],
  ['GoogleStrategy', () => new GoogleStrategy(), (t) => ({ google: t }), {}],
  ['OidcStrategy', () => new OidcStrategy(), (t) => ({ oidc: { okta: t } }), { 'kubernetes.io/oidc-token-provider': 'okta' }],
])(`%s: ${CALLS.toLocaleString('en')} interleaved calls each return the caller's own token`, async (_name, make, auth, authMetadata) => {
  const s = make();
  const plan = schedule(CALLS);
  const results = await Promise.all(plan.map(({ user, cluster }) => s.getCredential({ name: `c${cluster}`, url: 'https://127.0.0.1:6443', authMetadata }, auth(user.token))));
  const cross = results.filter((r, i) => r.token !== plan[i].user.token).length;
  expect(cross).toBe(0);
});
