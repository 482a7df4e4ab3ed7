'use strict';
// The module's configuration, `kubernetes.nativeAuth.disabled` (config.d.ts): it narrows the
// set of strategies the module registers, in a real Backstage backend (startTestBackend with
// @backstage/plugin-kubernetes-backend 0.21.11), and the shipped config schema validates it.

const { execFile } = require('node:child_process');
const path = require('node:path');
const { startTestBackend, mockServices, mockCredentials } = require('@backstage/backend-test-utils');
const { createBackendModule } = require('@backstage/backend-plugin-api');
const { kubernetesAuthStrategyExtensionPoint } = require('@backstage/plugin-kubernetes-node');
const { loadConfigSchema } = require('@backstage/config-loader');
const { KubeApiStandIn } = require('./helpers/kube-api');
const { strategyClasses } = require('..');

const ROOT = path.resolve(__dirname, '..');

let api;

beforeAll(async () => {
  api = await new KubeApiStandIn({ tokens: { 'aks-user-token': 'carol', 'google-user-token': 'bob@example.com' } }).start();
});

afterAll(async () => {
  await api.stop();
});

function cluster(name, authProvider) {
  return { name, authProvider, url: api.url, caData: api.caData };
}

async function startBackstage({ clusters, nativeAuth, extra = [] }) {
  const backend = await startTestBackend({
    features: [
      require('@backstage/plugin-kubernetes-backend').default,
      require('../module'),
      mockServices.rootConfig.factory({
        data: {
          kubernetes: {
            ...(nativeAuth === undefined ? {} : { nativeAuth }),
            serviceLocatorMethod: { type: 'multiTenant' },
            clusterLocatorMethods: [{ type: 'config', clusters }],
          },
        },
      }),
      ...extra,
    ],
  });
  return { backend, base: `http://127.0.0.1:${backend.server.port()}/api/kubernetes` };
}

async function proxy(base, clusterName, headers) {
  const res = await fetch(`${base}/proxy/api/v1/namespaces`, {
    headers: { Authorization: mockCredentials.user.header(), 'Backstage-Kubernetes-Cluster': clusterName, ...headers },
  });
  return { status: res.status, body: await res.json() };
}

describe('kubernetes.nativeAuth.disabled', () => {
  it('a disabled name is not registered: its clusters fail Backstage startup validation', async () => {
    await expect(
      startBackstage({ clusters: [cluster('aks', 'aks'), cluster('gke', 'google')], nativeAuth: { disabled: ['google'] } }),
    ).rejects.toThrow(`Invalid cluster 'gke': authProvider "google" has no config associated with it`);
  });

  it('the other names stay native, and another module can register the disabled name', async () => {
    const calls = [];
    const ownGoogle = createBackendModule({
      pluginId: 'kubernetes',
      moduleId: 'own-google',
      register(env) {
        env.registerInit({
          deps: { authStrategy: kubernetesAuthStrategyExtensionPoint },
          async init({ authStrategy }) {
            authStrategy.addAuthStrategy('google', {
              async getCredential(_cluster, requestAuth) {
                calls.push(requestAuth);
                return { type: 'bearer token', token: 'google-user-token' };
              },
              validateCluster: () => [],
              presentAuthMetadata: () => ({}),
            });
          },
        });
      },
    });
    const { backend, base } = await startBackstage({
      clusters: [cluster('aks', 'aks'), cluster('gke', 'google')],
      nativeAuth: { disabled: ['google'] },
      extra: [ownGoogle],
    });
    try {
      const aks = await proxy(base, 'aks', { 'Backstage-Kubernetes-Authorization-AKS': 'aks-user-token' });
      expect([aks.status, aks.body.metadata.user]).toEqual([200, 'carol']);
      const gke = await proxy(base, 'gke', {});
      expect([gke.status, gke.body.metadata.user]).toEqual([200, 'bob@example.com']);
      expect(calls).toEqual([{}]);
    } finally {
      await backend.stop();
    }
  });

  it('disabling every native name registers nothing, so Backstage uses its built-in strategies', async () => {
    const everyName = Object.keys(strategyClasses);
    // With the native module active, a provider we do not implement fails validation; with
    // Backstage's built-in map it is accepted.
    const builtInOnly = ['aws', 'azure', 'googleServiceAccount'].find((n) => !everyName.includes(n));
    const clusters = [cluster('aks', 'aks')];
    if (builtInOnly) clusters.push(cluster('builtin', builtInOnly));
    const { backend, base } = await startBackstage({ clusters, nativeAuth: { disabled: everyName } });
    try {
      const aks = await proxy(base, 'aks', { 'Backstage-Kubernetes-Authorization-AKS': 'aks-user-token' });
      expect([aks.status, aks.body.metadata.user]).toEqual([200, 'carol']);
    } finally {
      await backend.stop();
    }
  });

  it('an unknown name aborts startup, naming it and the known names', async () => {
    await expect(
      startBackstage({ clusters: [cluster('aks', 'aks')], nativeAuth: { disabled: ['gogle'] } }),
    ).rejects.toThrow(/Invalid config kubernetes\.nativeAuth\.disabled: unknown auth provider 'gogle'; known names are .*google/);
  });

  it('a value that is not a list of strings aborts startup', async () => {
    await expect(
      startBackstage({ clusters: [cluster('aks', 'aks')], nativeAuth: { disabled: 'google' } }),
    ).rejects.toThrow(/kubernetes\.nativeAuth\.disabled/);
  });
});

describe('the config schema (package.json configSchema)', () => {
  let schema;

  beforeAll(async () => {
    // As Backstage's config tooling reads it: from our package.json's `configSchema`.
    schema = await loadConfigSchema({
      dependencies: [],
      packagePaths: [path.join(ROOT, 'package.json')],
      excludePackageDependencies: true,
    });
  });

  const process = (nativeAuth) =>
    schema.process([{ data: { kubernetes: { nativeAuth } }, context: 'app-config.yaml' }]);

  it('accepts a list of names', () => {
    expect(() => process({ disabled: ['google', 'aks'] })).not.toThrow();
    expect(() => process({})).not.toThrow();
  });

  it('rejects a disabled value that is not a list of strings', () => {
    expect(() => process({ disabled: 'google' })).toThrow(
      'Config must be array { type=array } at /kubernetes/nativeAuth/disabled',
    );
    expect(() => process({ disabled: { google: true } })).toThrow('must be array');
    expect(() => process({ disabled: [['google']] })).toThrow('at /kubernetes/nativeAuth/disabled/0');
  });

  it('config.schema.json is what config.d.ts compiles to', async () => {
    const result = await new Promise((resolve) => {
      execFile(
        globalThis.process.execPath,
        [path.join(ROOT, 'scripts', 'config-schema.js'), '--check'],
        { cwd: ROOT, timeout: 50_000 },
        (error, stdout, stderr) => resolve({ code: error ? error.code : 0, stdout, stderr }),
      );
    });
    expect(result).toEqual({ code: 0, stdout: 'config.schema.json matches config.d.ts\n', stderr: '' });
  });
});
