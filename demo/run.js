'use strict';
// `npm run demo`: a real Backstage backend, as its own Node process (demo/backend.js:
// `createBackend()` + @backstage/plugin-kubernetes-backend 0.21.11 + our module), configured by
// demo/app-config.yaml with one cluster per auth provider, all pointing at a loopback HTTPS
// Kubernetes API stand-in that has its own CA and accepts only the credentials it knows. For
// each cluster the backend lists, calls the backend's proxy as the Backstage frontend would and
// prints what the API server saw. Loopback only, no cloud account; exits by itself, 0 when
// every cluster answered with the expected user's credential.

const path = require('node:path');
const { startBackend, startKubeApi, CLUSTERS } = require('./harness');

const ROOT = path.resolve(__dirname, '..');
const CALLS_PER_CLUSTER = 3;
const CREDENTIAL_SEEN = { bearer: 'bearer token', x509: 'x509 client certificate' };

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function callCluster(backend, api, cluster, expected) {
  const headers = { 'Backstage-Kubernetes-Cluster': cluster.name, ...(expected ? expected.headers : {}) };
  const seenBefore = api.requests.length;
  const exchangesBefore = expected && expected.exchanges ? expected.exchanges(api) : undefined;
  const times = [];
  const statuses = [];
  let pods = '-';
  for (let i = 0; i < CALLS_PER_CLUSTER; i++) {
    const t0 = process.hrtime.bigint();
    const res = await backend.get('/api/kubernetes/proxy/api/v1/namespaces/default/pods', headers);
    const body = await res.json().catch(() => ({}));
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    statuses.push(res.status);
    if (res.status === 200 && Array.isArray(body.items)) pods = body.items.length;
  }
  // What reached the API server for these calls, as it authenticated them.
  const seen = api.requests.slice(seenBefore);
  const credentials = [...new Set(seen.map((r) => CREDENTIAL_SEEN[r.via] ?? 'none accepted'))];
  const users = [...new Set(seen.map((r) => r.user ?? '-'))];
  const ok =
    expected !== undefined &&
    statuses.every((s) => s === 200) &&
    seen.length === CALLS_PER_CLUSTER &&
    seen.every((r) => r.via === (expected.via ?? 'bearer')) &&
    users.length === 1 &&
    users[0] === expected.user;
  const cache =
    exchangesBefore === undefined
      ? 'n/a' // the caller's own token or the configured one passes through: nothing to cache
      : `${CALLS_PER_CLUSTER - (expected.exchanges(api) - exchangesBefore)}/${CALLS_PER_CLUSTER}`;
  return {
    ok,
    cluster: cluster.name,
    provider: cluster.authProvider,
    credential: credentials.join(', ') || 'no request arrived',
    user: users.join(', ') || '-',
    pods,
    http: [...new Set(statuses)].join(', '),
    first: times[0].toFixed(1),
    next: median(times.slice(1)).toFixed(1),
    cache,
  };
}

function printTable(rows) {
  const cols = [
    ['cluster', 'cluster'],
    ['provider', 'auth provider'],
    ['credential', 'credential type (as the API server saw it)'],
    ['user', 'API server saw user'],
    ['pods', 'pods listed'],
    ['http', 'HTTP'],
    ['first', '1st call (ms)'],
    ['next', `next ${CALLS_PER_CLUSTER - 1} (median ms)`],
    ['cache', 'cache hits'],
  ];
  const widths = cols.map(([k, t]) => Math.max(t.length, ...rows.map((r) => String(r[k]).length)));
  const line = (cells) => '| ' + cells.map((c, i) => String(c).padEnd(widths[i])).join(' | ') + ' |';
  console.log(line(cols.map(([, t]) => t)));
  console.log('|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
  for (const r of rows) console.log(line(cols.map(([k]) => r[k])));
}

async function main() {
  const started = Date.now();
  const api = await startKubeApi();
  let backend;
  const rows = [];
  let listed = [];
  let registered;
  let stopped;
  try {
    backend = await startBackend({ cwd: ROOT, entry: path.join(__dirname, 'backend.js'), kubeApi: api });
    const readyMs = Date.now() - started;
    registered = backend.logs().find((l) => l.includes('Native Kubernetes auth strategies registered'));
    console.log(
      `Backstage backend (pid ${backend.pid}) ready on ${backend.url} in ${(readyMs / 1000).toFixed(1)} s; ` +
        `Kubernetes API stand-in on ${api.url} (own CA; bearer tokens, EKS tokens, client certificates, Pinniped Concierge)`,
    );
    if (registered) console.log(`backend log: ${registered.replace(/^\S+\s+/, '').trimEnd()}`);

    const res = await backend.get('/api/kubernetes/clusters');
    if (res.status !== 200) throw new Error(`GET /api/kubernetes/clusters answered ${res.status}: ${await res.text()}`);
    listed = (await res.json()).items;
    console.log(`GET /api/kubernetes/clusters: ${listed.map((c) => `${c.name} (${c.authProvider})`).join(', ')}\n`);
    for (const cluster of listed) {
      rows.push(await callCluster(backend, api, cluster, CLUSTERS.find((c) => c.name === cluster.name)));
    }
  } finally {
    if (backend) stopped = await backend.stop();
    await api.stop();
  }

  printTable(rows);
  const good = rows.filter((r) => r.ok).length;
  const missing = CLUSTERS.filter((c) => !listed.some((l) => l.name === c.name)).map((c) => c.name);
  console.log(
    `\n${good}/${CLUSTERS.length} clusters answered through the native strategies, ` +
      `${CALLS_PER_CLUSTER} proxied GET /api/v1/namespaces/default/pods each` +
      (missing.length ? `; not listed by the backend: ${missing.join(', ')}` : '') +
      '.',
  );
  console.log(
    'cache hits: calls served without a new upstream credential; n/a where the strategy passes ' +
      'the caller\'s own or the configured token through (nothing to cache). ' +
      'The 1st call of a cluster includes creating its proxy middleware.',
  );
  console.log(
    `Backend stopped (${stopped && stopped.signal ? `signal ${stopped.signal}` : `exit code ${stopped && stopped.code}`}); ` +
      `total ${((Date.now() - started) / 1000).toFixed(1)} s.`,
  );
  const ok = registered !== undefined && good === CLUSTERS.length && rows.length === CLUSTERS.length;
  if (!ok && backend) {
    console.error('\nThe backend\'s last log lines:\n' + backend.logs().slice(-15).map((l) => l.slice(0, 400)).join('\n'));
  }
  process.exitCode = ok ? 0 : 1;
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
