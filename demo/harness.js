'use strict';
// Shared by `npm run demo` (demo/run.js) and the fresh-install test
// (scripts/fresh-install.test.js): starts a Backstage backend as its own Node process on a
// loopback port, with demo/app-config.yaml filled from the environment, and calls it over HTTP.
// Every wait is bounded; every process started here is stopped here.

const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const APP_CONFIG = path.join(__dirname, 'app-config.yaml');

/** The bearer tokens the API stand-in accepts, and the user each one is. */
const TOKENS = {
  'sa-token': 'system:serviceaccount:backstage:reader',
  'oidc-user-token': 'alice',
  'google-user-token': 'bob@example.com',
  'aks-user-token': 'carol',
};

/** Pinniped users: the cluster-scoped ID token the frontend sends, and who it is. */
const CONCIERGE_USERS = { 'dave-id-token': 'dave' };

/**
 * The AWS main account the backend signs EKS tokens with (static keys from the app-config),
 * drawn per run. The API stand-in plays EKS: it accepts a token only if its SigV4 signature
 * recomputes with this secret, as EKS's authenticator does through STS.
 */
const AWS_DEMO = {
  accessKeyId: `AKIADEMO${crypto.randomBytes(6).toString('hex').toUpperCase()}`,
  secretAccessKey: crypto.randomBytes(24).toString('base64'),
};
const AWS_DEMO_USER = `arn:aws:iam::123456789012:user/${AWS_DEMO.accessKeyId}`;

/** The loopback Kubernetes API stand-in every demo cluster points at: bearer tokens, EKS
 *  tokens (signature verified), client certificates from its CA, and a Pinniped Concierge. */
async function startKubeApi() {
  const { KubeApiStandIn } = require('../__test__/helpers/kube-api');
  const { verifyEksToken } = require('../__test__/helpers/eks-verify');
  return new KubeApiStandIn({
    tokens: TOKENS,
    concierge: { users: CONCIERGE_USERS },
    verifyToken(token) {
      try {
        verifyEksToken(token, {
          clusterId: 'prod-eks',
          secretFor: (k) => (k === AWS_DEMO.accessKeyId ? AWS_DEMO.secretAccessKey : undefined),
        });
        return AWS_DEMO_USER;
      } catch {
        return undefined;
      }
    },
  }).start();
}

/**
 * The clusters of demo/app-config.yaml: what the Backstage frontend sends to the proxy for each
 * (its `Backstage-Kubernetes-Authorization-*` headers), who the API server must then see and
 * how (`via`: 'bearer' or 'x509'; default 'bearer'). A cluster whose strategy caches a
 * credential it obtains upstream may add `exchanges(api)`: how many credentials the upstream
 * stand-in has issued so far; the demo then reports cache hits as calls minus new issuances.
 */
const CLUSTERS = [
  { name: 'prod-sa', authProvider: 'serviceAccount', headers: {}, user: TOKENS['sa-token'] },
  {
    name: 'prod-oidc',
    authProvider: 'oidc',
    headers: { 'Backstage-Kubernetes-Authorization-OIDC-okta': 'oidc-user-token' },
    user: TOKENS['oidc-user-token'],
  },
  {
    name: 'prod-gke',
    authProvider: 'google',
    headers: { 'Backstage-Kubernetes-Authorization-Google': 'google-user-token' },
    user: TOKENS['google-user-token'],
  },
  {
    name: 'prod-aks',
    authProvider: 'aks',
    headers: { 'Backstage-Kubernetes-Authorization-AKS': 'aks-user-token' },
    user: TOKENS['aks-user-token'],
  },
  { name: 'prod-eks', authProvider: 'aws', headers: {}, user: AWS_DEMO_USER },
  {
    name: 'prod-pinniped',
    authProvider: 'pinniped',
    headers: { 'Backstage-Kubernetes-Authorization-Pinniped-ClusterIDToken': 'dave-id-token' },
    user: CONCIERGE_USERS['dave-id-token'],
    via: 'x509',
    exchanges: (api) => api.tcr.length,
  },
];

async function freePort() {
  const server = net.createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// eslint-disable-next-line no-control-regex
const stripAnsi = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');

/**
 * Starts `node <entry> --config demo/app-config.yaml` in `cwd` and resolves once the backend
 * answers its readiness check.
 *
 * @param {object} opts
 * @param {string} opts.cwd directory the backend runs in (resolves its packages from there)
 * @param {string} opts.entry the backend's main file
 * @param {{url: string, caData: string}} opts.kubeApi the loopback Kubernetes API stand-in
 * @param {string} [opts.config] app-config file (default demo/app-config.yaml)
 * @param {Record<string,string>} [opts.env] extra environment
 * @param {number} [opts.timeoutMs] bound on start-up
 */
async function startBackend({ cwd, entry, kubeApi, config = APP_CONFIG, env = {}, timeoutMs = 120_000 }) {
  const port = await freePort();
  const token = crypto.randomBytes(24).toString('base64url');
  // The plugin-token signing keys of backend.auth.pluginKeyStore (static), made for this run.
  const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'k8s-native-demo-keys-'));
  const keys = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const publicKeyFile = path.join(keyDir, 'public.pem');
  const privateKeyFile = path.join(keyDir, 'private.pem');
  fs.writeFileSync(publicKeyFile, keys.publicKey.export({ type: 'spki', format: 'pem' }));
  fs.writeFileSync(privateKeyFile, keys.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  const child = spawn(process.execPath, [entry, '--config', config], {
    cwd,
    env: {
      ...process.env,
      NODE_ENV: 'development',
      ...env,
      DEMO_BACKEND_PORT: String(port),
      DEMO_BACKEND_TOKEN: token,
      DEMO_KUBE_API_URL: kubeApi.url,
      DEMO_KUBE_API_CA_DATA: kubeApi.caData,
      DEMO_SA_TOKEN: 'sa-token',
      DEMO_AWS_ACCESS_KEY_ID: AWS_DEMO.accessKeyId,
      DEMO_AWS_SECRET_ACCESS_KEY: AWS_DEMO.secretAccessKey,
      DEMO_PLUGIN_PUBLIC_KEY_FILE: publicKeyFile,
      DEMO_PLUGIN_PRIVATE_KEY_FILE: privateKeyFile,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines = [];
  let partial = '';
  const collect = (chunk) => {
    const text = partial + chunk.toString('utf8');
    const parts = text.split('\n');
    partial = parts.pop();
    for (const line of parts) {
      // The readiness polls below are logged by the backend; they are noise.
      if (line.includes('/.backstage/health/')) continue;
      lines.push(stripAnsi(line));
      if (lines.length > 2000) lines.shift();
    }
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  let exited = null;
  const exitPromise = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      fs.rmSync(keyDir, { recursive: true, force: true });
      resolve(exited);
    });
  });

  const url = `http://127.0.0.1:${port}`;
  const backend = {
    url,
    port,
    token,
    pid: child.pid,
    /** The backend's log lines so far, without colour codes. */
    logs: () => lines.concat(partial ? [stripAnsi(partial)] : []),
    /** Stops the process: SIGTERM, then SIGKILL after 10 s. Resolves when it has exited. */
    async stop() {
      if (exited) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exitPromise;
      clearTimeout(timer);
      return exited;
    },
    /** GET `path` on the backend with the static external-access token. */
    async get(urlPath, headers = {}, timeout = 30_000) {
      return fetch(url + urlPath, {
        headers: { Authorization: `Bearer ${token}`, ...headers },
        signal: AbortSignal.timeout(timeout),
      });
    },
  };

  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited) {
      throw new Error(
        `the backend exited during start-up (${JSON.stringify(exited)}); its last lines:\n${backend.logs().slice(-40).join('\n')}`,
      );
    }
    if (Date.now() > deadline) {
      await backend.stop();
      throw new Error(
        `the backend did not become ready within ${timeoutMs} ms; its last lines:\n${backend.logs().slice(-40).join('\n')}`,
      );
    }
    try {
      const res = await fetch(`${url}/.backstage/health/v1/readiness`, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      if (res.status === 200) return backend;
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
}

module.exports = {
  APP_CONFIG,
  TOKENS,
  CLUSTERS,
  startBackend,
  startKubeApi,
  freePort,
};
