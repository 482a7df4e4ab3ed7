'use strict';
// The fresh-backend install test (`npm run test:install`, part of `npm test`): what a Backstage
// team gets from `npm install backstage-kubernetes-auth-native`. It packs the main package and
// this platform's package as a release would (scripts/pack-local.js), creates a minimal
// Backstage backend in a temporary directory (createBackend() + kubernetes-backend 0.21.11 +
// our module, demo/backend.js and demo/app-config.yaml), installs the two tarballs and the
// Backstage packages there with no Rust toolchain on PATH, starts the backend as its own Node
// process on a loopback port and checks through HTTP that /api/kubernetes/clusters and the
// proxy work with native credentials. Runs with Node's test runner, outside Jest.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { packLocal } = require('./pack-local');
const { startBackend, startKubeApi, CLUSTERS } = require('../demo/harness');

const ROOT = path.resolve(__dirname, '..');
const ROOT_PKG = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const INSTALL_TIMEOUT_MS = 15 * 60_000;

// Same versions as our devDependencies, so the install is the combination our tests cover.
const BACKSTAGE = [
  '@backstage/backend-defaults',
  '@backstage/backend-plugin-api',
  '@backstage/plugin-kubernetes-backend',
  '@backstage/plugin-kubernetes-node',
];

/** PATH without any Rust toolchain directory: the install must not need one. */
function pathWithoutRust() {
  return process.env.PATH.split(path.delimiter)
    .filter((dir) => !/\.cargo|rustup/.test(dir) && !fs.existsSync(path.join(dir, 'cargo')))
    .join(path.delimiter);
}

function execAsync(cmd, args, options) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...options }, (error, stdout, stderr) => {
      if (error) {
        error.message += `\n${stdout}\n${stderr}`;
        reject(error);
      } else {
        resolve({ stdout, stderr });
      }
    });
  });
}

let work;
let app;
let packed;
let api;
let backend;
const env = { ...process.env, PATH: pathWithoutRust() };

before(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'k8s-native-fresh-'));
  packed = packLocal(path.join(work, 'tarballs'));

  app = path.join(work, 'backend');
  fs.mkdirSync(app);
  fs.writeFileSync(
    path.join(app, 'package.json'),
    JSON.stringify(
      {
        name: 'fresh-backstage-backend',
        version: '0.0.0',
        private: true,
        main: 'index.js',
        dependencies: {
          ...Object.fromEntries(BACKSTAGE.map((name) => [name, ROOT_PKG.devDependencies[name]])),
          'backstage-kubernetes-auth-native': `file:${packed.main.file}`,
          // Published, this comes with the main package as an optional dependency; until the
          // platform packages are published, the local tarball stands in for it.
          [`backstage-kubernetes-auth-native-${packed.abi}`]: `file:${packed.platform.file}`,
        },
      },
      null,
      2,
    ),
  );
  fs.copyFileSync(path.join(ROOT, 'demo', 'backend.js'), path.join(app, 'index.js'));
  fs.copyFileSync(path.join(ROOT, 'demo', 'app-config.yaml'), path.join(app, 'app-config.yaml'));

  const t0 = Date.now();
  await execAsync('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], {
    cwd: app,
    env,
    timeout: INSTALL_TIMEOUT_MS,
  });
  console.log(`npm install in the fresh backend took ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  api = await startKubeApi();
  backend = await startBackend({
    cwd: app,
    entry: path.join(app, 'index.js'),
    config: path.join(app, 'app-config.yaml'),
    kubeApi: api,
    env,
  });
});

after(async () => {
  if (backend) await backend.stop();
  if (api) await api.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

// napi-rs target triple -> the npm/ folder, and the os/cpu/libc npm must match it on.
const PLATFORMS = {
  'x86_64-unknown-linux-gnu': ['linux-x64-gnu', 'linux', 'x64', 'glibc'],
  'aarch64-unknown-linux-gnu': ['linux-arm64-gnu', 'linux', 'arm64', 'glibc'],
  'x86_64-unknown-linux-musl': ['linux-x64-musl', 'linux', 'x64', 'musl'],
  'aarch64-unknown-linux-musl': ['linux-arm64-musl', 'linux', 'arm64', 'musl'],
  'x86_64-apple-darwin': ['darwin-x64', 'darwin', 'x64'],
  'aarch64-apple-darwin': ['darwin-arm64', 'darwin', 'arm64'],
  'x86_64-pc-windows-msvc': ['win32-x64-msvc', 'win32', 'x64'],
  'aarch64-pc-windows-msvc': ['win32-arm64-msvc', 'win32', 'arm64'],
};

test('every napi target has its npm/ package, with the os/cpu/libc and name the loader requires', () => {
  assert.deepEqual([...ROOT_PKG.napi.targets].sort(), Object.keys(PLATFORMS).sort());
  assert.deepEqual(fs.readdirSync(path.join(ROOT, 'npm')).sort(), Object.values(PLATFORMS).map((p) => p[0]).sort());
  const loader = fs.readFileSync(path.join(ROOT, 'binding.js'), 'utf8');
  for (const [abi, os_, cpu, libc] of Object.values(PLATFORMS)) {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'npm', abi, 'package.json'), 'utf8'));
    const binary = `${ROOT_PKG.napi.binaryName}.${abi}.node`;
    assert.deepEqual(
      [pkg.name, pkg.version, pkg.os, pkg.cpu, pkg.libc, pkg.main, pkg.files],
      [`${ROOT_PKG.name}-${abi}`, ROOT_PKG.version, [os_], [cpu], libc ? [libc] : undefined, binary, [binary]],
    );
    assert.ok(loader.includes(`require('${pkg.name}')`), `binding.js does not load ${pkg.name}`);
    assert.ok(loader.includes(`require('./${binary}')`), `binding.js does not load ./${binary}`);
  }
});

test('the main tarball holds only the loader, the JS layer, types, module, config schema, README', () => {
  assert.deepEqual(packed.main.files, [...ROOT_PKG.files, 'package.json'].sort());
  assert.ok(!packed.main.files.some((f) => f.endsWith('.node')));
  assert.deepEqual(packed.platform.files, ['README.md', `${ROOT_PKG.napi.binaryName}.${packed.abi}.node`, 'package.json']);
});

test('the packed package.json names every platform package as an optional dependency', () => {
  const expected = Object.fromEntries(
    fs
      .readdirSync(path.join(ROOT, 'npm'))
      .map((abi) => [`backstage-kubernetes-auth-native-${abi}`, ROOT_PKG.version]),
  );
  assert.equal(Object.keys(expected).length, ROOT_PKG.napi.targets.length);
  assert.deepEqual(packed.packageJson.optionalDependencies, expected);
});

test('the installed package loads its binary from the platform package', async () => {
  const installed = path.join(app, 'node_modules', 'backstage-kubernetes-auth-native');
  assert.ok(!fs.readdirSync(installed).some((f) => f.endsWith('.node')));
  const { stdout } = await execAsync(
    process.execPath,
    [
      '-e',
      `const n = require('backstage-kubernetes-auth-native');
       const bins = Object.keys(require.cache).filter((f) => f.endsWith('.node'));
       console.log(JSON.stringify({ bins, classes: Object.keys(n.strategyClasses) }));`,
    ],
    { cwd: app, env, timeout: 30_000 },
  );
  const { bins, classes } = JSON.parse(stdout);
  assert.deepEqual(
    bins.map((f) => path.relative(app, f)),
    [path.join('node_modules', `backstage-kubernetes-auth-native-${packed.abi}`, `${ROOT_PKG.napi.binaryName}.${packed.abi}.node`)],
  );
  assert.ok(classes.includes('serviceAccount'));
});

test('the backend registers the native strategies at startup', () => {
  const line = backend.logs().find((l) => l.includes('Native Kubernetes auth strategies registered'));
  assert.ok(line, `no registration line in the backend log:\n${backend.logs().slice(-20).join('\n')}`);
});

test('GET /api/kubernetes/clusters lists the configured clusters and their auth providers', async () => {
  const res = await backend.get('/api/kubernetes/clusters');
  assert.equal(res.status, 200);
  const { items } = await res.json();
  assert.deepEqual(
    items.map((c) => [c.name, c.authProvider]),
    CLUSTERS.map((c) => [c.name, c.authProvider]),
  );
});

test('GET /api/kubernetes/clusters without a Backstage token is refused', async () => {
  const res = await fetch(`${backend.url}/api/kubernetes/clusters`, { signal: AbortSignal.timeout(30_000) });
  assert.equal(res.status, 401);
});

for (const cluster of CLUSTERS) {
  test(`the proxy reaches ${cluster.name} (${cluster.authProvider}) with the native credential`, async () => {
    const before = api.requests.length;
    const res = await backend.get('/api/kubernetes/proxy/api/v1/namespaces/default/pods', {
      'Backstage-Kubernetes-Cluster': cluster.name,
      ...cluster.headers,
    });
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.kind, 'PodList');
    assert.equal(body.items.length, 2);
    const seen = api.requests.slice(before);
    assert.deepEqual(
      seen.map((r) => [r.path, r.via, r.user]),
      [['/api/v1/namespaces/default/pods', cluster.via ?? 'bearer', cluster.user]],
    );
  });
}

test('the proxy answers the API server\'s 401 when the user token is wrong', async () => {
  const res = await backend.get('/api/kubernetes/proxy/api/v1/namespaces/default/pods', {
    'Backstage-Kubernetes-Cluster': 'prod-aks',
    'Backstage-Kubernetes-Authorization-AKS': 'not-a-known-token',
  });
  assert.equal(res.status, 401);
  assert.equal((await res.json()).reason, 'Unauthorized');
});

test('the backend process stops on SIGTERM', async () => {
  const exit = await backend.stop();
  assert.deepEqual(exit, { code: 0, signal: null });
});
