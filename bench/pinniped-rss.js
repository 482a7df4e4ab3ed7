'use strict';
// RSS of a Backstage kubernetes-backend over N requests to a Pinniped cluster, through the
// proxy route (`/proxy/...`, TLS options built per request) or the fetcher route
// (`POST /services/:id`, which caches one HTTPS agent per distinct client certificate):
// our PinnipedStrategy (one cached certificate per user) against a strategy built on
// Backstage's own PinnipedHelper (a new certificate per request; the backend's connection
// layer keeps one HTTPS agent per distinct certificate and never evicts them).
// Each side runs in its own child process, the stand-in in a third.
// Usage: node bench/pinniped-rss.js [requests] [proxy|services]

const { spawnSync } = require('node:child_process');
const path = require('node:path');

const REQUESTS = Number(process.argv[2] ?? 2000);
const ROUTE = process.argv[3] ?? 'services';

const ENTITY = {
  apiVersion: 'backstage.io/v1alpha1',
  kind: 'Component',
  metadata: { name: 'svc', namespace: 'default', annotations: { 'backstage.io/kubernetes-id': 'svc' } },
  spec: { type: 'service', owner: 'team', lifecycle: 'production' },
};

async function child(mode, requests, route) {
  const { startTestBackend, mockServices, mockCredentials } = require('@backstage/backend-test-utils');
  const { createBackendModule } = require('@backstage/backend-plugin-api');
  const { kubernetesAuthStrategyExtensionPoint, PinnipedHelper } = require('@backstage/plugin-kubernetes-node');
  const { spawn } = require('node:child_process');
  const readline = require('node:readline');
  const native = require('..');

  // The stand-in runs in its own process: its certificate signing and TLS sessions must not
  // count toward the backend's RSS.
  const server = spawn(process.execPath, [path.join(__dirname, 'standin-server.js'), JSON.stringify({ concierge: { 'alice-id-token': 'alice' } })], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const api = JSON.parse(await new Promise((resolve) => readline.createInterface({ input: server.stdout }).once('line', resolve)));
  const module = createBackendModule({
    pluginId: 'kubernetes',
    moduleId: 'rss-pinniped',
    register(env) {
      env.registerInit({
        deps: { authStrategy: kubernetesAuthStrategyExtensionPoint, logger: require('@backstage/backend-plugin-api').coreServices.logger },
        async init({ authStrategy, logger }) {
          if (mode === 'ours') {
            authStrategy.addAuthStrategy('pinniped', new native.PinnipedStrategy());
            return;
          }
          const helper = new PinnipedHelper(logger);
          authStrategy.addAuthStrategy('pinniped', {
            async getCredential(cd, auth) {
              const c = await helper.tokenCredentialRequest(cd, {
                clusterScopedIdToken: auth.pinniped.clusteridtoken,
                authenticator: { apiGroup: 'authentication.concierge.pinniped.dev', kind: 'JWTAuthenticator', name: 'supervisor' },
              });
              return { type: 'x509 client certificate', key: c.key, cert: c.cert };
            },
            validateCluster: () => [],
            presentAuthMetadata: () => ({}),
          });
        },
      });
    },
  });
  const backend = await startTestBackend({
    features: [
      require('@backstage/plugin-kubernetes-backend').default,
      module,
      require('@backstage/plugin-catalog-node/testUtils').catalogServiceMock.factory({ entities: [ENTITY] }),
      mockServices.rootConfig.factory({
        data: {
          kubernetes: {
            serviceLocatorMethod: { type: 'multiTenant' },
            clusterLocatorMethods: [
              { type: 'config', clusters: [{ name: 'p', authProvider: 'pinniped', url: api.url, caData: api.caData }] },
            ],
          },
        },
      }),
    ],
  });
  const base = `http://127.0.0.1:${backend.server.port()}/api/kubernetes`;
  const call = async () => {
    const res =
      route === 'proxy'
        ? await fetch(`${base}/proxy/api/v1/namespaces`, {
            headers: {
              Authorization: mockCredentials.user.header(),
              'Backstage-Kubernetes-Cluster': 'p',
              'Backstage-Kubernetes-Authorization-Pinniped-ClusterIDToken': 'alice-id-token',
            },
          })
        : await fetch(`${base}/services/svc`, {
            method: 'POST',
            headers: { Authorization: mockCredentials.user.header(), 'Content-Type': 'application/json' },
            body: JSON.stringify({ entity: ENTITY, auth: { pinniped: { clusteridtoken: 'alice-id-token' } } }),
          });
    const body = await res.text();
    if (res.status !== 200) throw new Error(`${route} answered ${res.status}`);
    if (route === 'services' && JSON.parse(body).items.some((i) => i.errors.length)) throw new Error(body.slice(0, 300));
  };
  for (let i = 0; i < 20; i++) await call();
  global.gc?.();
  const before = process.memoryUsage().rss;
  const t0 = Date.now();
  for (let i = 0; i < requests; i++) await call();
  const seconds = (Date.now() - t0) / 1000;
  global.gc?.();
  const after = process.memoryUsage().rss;
  const stats = await new Promise((resolve, reject) => {
    require('node:https')
      .get(`${api.url}/__standin/stats`, { ca: Buffer.from(api.caData, 'base64') }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve(JSON.parse(body)));
      })
      .on('error', reject);
  });
  const exchanges = stats.tokenCredentialRequests;
  await backend.stop();
  server.stdin.end();
  process.stdout.write(JSON.stringify({ mode, route, requests, rssBeforeMB: before / 2 ** 20, rssAfterMB: after / 2 ** 20, seconds, exchanges }) + '\n');
}

if (process.argv[2] === '--child') {
  child(process.argv[3], Number(process.argv[4]), process.argv[5]).catch((e) => {
    console.error(e);
    process.exit(1);
  });
} else {
  const results = [];
  for (const mode of ['ours', 'backstage']) {
    const r = spawnSync(process.execPath, ['--expose-gc', __filename, '--child', mode, String(REQUESTS), ROUTE], {
      cwd: path.resolve(__dirname, '..'),
      encoding: 'utf8',
      timeout: 600_000,
    });
    if (r.status !== 0) {
      console.error(r.stderr);
      process.exit(1);
    }
    results.push(JSON.parse(r.stdout.trim().split('\n').pop()));
  }
  const via = ROUTE === 'proxy' ? 'proxied requests (/proxy)' : 'workload fetches (POST /services/:id)';
  console.log(`\nBackstage backend RSS over ${REQUESTS} ${via} to a Pinniped cluster (one user)\n`);
  console.log('| strategy | TokenCredentialRequests | RSS before (MB) | RSS after (MB) | growth (MB) | requests/s |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const r of results) {
    const name = r.mode === 'ours' ? 'ours: PinnipedStrategy' : "Backstage's PinnipedHelper";
    console.log(
      `| ${name} | ${r.exchanges} | ${r.rssBeforeMB.toFixed(1)} | ${r.rssAfterMB.toFixed(1)} | ${(r.rssAfterMB - r.rssBeforeMB).toFixed(1)} | ${(r.requests / r.seconds).toFixed(0)} |`,
    );
  }
}
