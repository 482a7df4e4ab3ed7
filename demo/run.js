'use strict';
// `npm run demo`: a real Backstage kubernetes-backend (0.21.11) whose only auth strategies are
// ours, against a loopback HTTPS Kubernetes API stand-in that accepts only the credentials it
// issued. Calls the backend's proxy for each cluster and prints what happened. Loopback only;
// no cloud account; exits by itself.

const { startTestBackend, mockServices, mockCredentials } = require('@backstage/backend-test-utils');
const { KubeApiStandIn } = require('../__test__/helpers/kube-api');
const { DispatchStrategy, strategyClasses } = require('..');

const USERS = {
  'sa-token': 'system:serviceaccount:backstage:reader',
  'oidc-user-token': 'alice',
  'google-user-token': 'bob@example.com',
  'aks-user-token': 'carol',
};

async function main() {
  const api = await new KubeApiStandIn({ tokens: USERS }).start();
  const common = { url: api.url, caData: api.caData };
  const clusters = [
    { name: 'prod-sa', authProvider: 'serviceAccount', serviceAccountToken: 'sa-token', ...common },
    { name: 'prod-oidc', authProvider: 'oidc', oidcTokenProvider: 'okta', ...common },
    { name: 'prod-gke', authProvider: 'google', ...common },
    { name: 'prod-aks', authProvider: 'aks', ...common },
  ];
  // What the Backstage frontend would send for each provider, as proxy headers.
  const headers = {
    'prod-sa': {},
    'prod-oidc': { 'Backstage-Kubernetes-Authorization-OIDC-okta': 'oidc-user-token' },
    'prod-gke': { 'Backstage-Kubernetes-Authorization-Google': 'google-user-token' },
    'prod-aks': { 'Backstage-Kubernetes-Authorization-AKS': 'aks-user-token' },
  };

  const backend = await startTestBackend({
    features: [
      require('@backstage/plugin-kubernetes-backend').default,
      require('../module'),
      mockServices.rootConfig.factory({
        data: {
          kubernetes: {
            serviceLocatorMethod: { type: 'multiTenant' },
            clusterLocatorMethods: [{ type: 'config', clusters }],
          },
        },
      }),
    ],
  });
  const base = `http://127.0.0.1:${backend.server.port()}/api/kubernetes`;
  const dispatch = new DispatchStrategy({
    authStrategyMap: Object.fromEntries(Object.entries(strategyClasses).map(([k, C]) => [k, new C()])),
  });

  const rows = [];
  let failures = 0;
  try {
    const listed = await (await fetch(`${base}/clusters`, { headers: { Authorization: mockCredentials.user.header() } })).json();
    for (const cluster of listed.items) {
      const h = headers[cluster.name];
      const requestAuth = {
        oidc: { okta: h['Backstage-Kubernetes-Authorization-OIDC-okta'] },
        google: h['Backstage-Kubernetes-Authorization-Google'],
        aks: h['Backstage-Kubernetes-Authorization-AKS'],
      };
      const details = clusters.find((c) => c.name === cluster.name);
      const credential = await dispatch.getCredential(
        {
          name: details.name,
          url: details.url,
          authMetadata: {
            'kubernetes.io/auth-provider': details.authProvider,
            'kubernetes.io/oidc-token-provider': details.oidcTokenProvider,
            serviceAccountToken: details.serviceAccountToken,
          },
        },
        requestAuth,
      );
      const t0 = process.hrtime.bigint();
      const res = await fetch(`${base}/proxy/api/v1/namespaces/default/pods`, {
        headers: { Authorization: mockCredentials.user.header(), 'Backstage-Kubernetes-Cluster': cluster.name, ...h },
      });
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      const body = await res.json();
      if (res.status !== 200) failures++;
      rows.push({
        cluster: cluster.name,
        provider: cluster.authProvider,
        credential: credential.type,
        status: res.status,
        pods: res.status === 200 ? body.items.length : '-',
        user: res.status === 200 ? body.metadata.user : '-',
        ms: ms.toFixed(1),
      });
    }
  } finally {
    await backend.stop();
    await api.stop();
  }

  const cols = ['cluster', 'provider', 'credential', 'status', 'pods', 'user', 'ms'];
  const titles = ['cluster', 'auth provider', 'credential type', 'HTTP', 'pods listed', 'API server saw user', 'time (ms)'];
  const widths = cols.map((c, i) => Math.max(titles[i].length, ...rows.map((r) => String(r[c]).length)));
  const line = (cells) => '| ' + cells.map((c, i) => String(c).padEnd(widths[i])).join(' | ') + ' |';
  console.log('\nBackstage kubernetes-backend 0.21.11 + backstage-kubernetes-auth-native, loopback cluster ' + api.url + '\n');
  console.log(line(titles));
  console.log('|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
  for (const r of rows) console.log(line(cols.map((c) => r[c])));
  console.log(`\n${rows.length - failures}/${rows.length} clusters answered through native credentials.`);
  process.exitCode = failures === 0 && rows.length === clusters.length ? 0 : 1;
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
