'use strict';
// A real Backstage backend (@backstage/plugin-kubernetes-backend 0.21.11 under
// startTestBackend) with our module as its only auth strategies, talking to a loopback
// HTTPS Kubernetes API stand-in that has its own CA and accepts only the tokens it knows.

const { startTestBackend, mockServices, mockCredentials } = require('@backstage/backend-test-utils');
const { createBackendModule } = require('@backstage/backend-plugin-api');
const { kubernetesAuthStrategyExtensionPoint } = require('@backstage/plugin-kubernetes-node');
const { catalogServiceMock } = require('@backstage/plugin-catalog-node/testUtils');
const { KubeApiStandIn } = require('./helpers/kube-api');
const { verifyEksToken } = require('./helpers/eks-verify');
const { EntraStandIn, AKS_SCOPE } = require('./helpers/entra-standin');
const { setEnv } = require('./helpers/real-env');
const { AksStrategy, PinnipedHelper } = require('..');

const kubernetesPlugin = require('@backstage/plugin-kubernetes-backend').default;
const nativeAuthModule = require('../module');

const TOKENS = {
  'sa-token-LEAKCANARY': 'system:serviceaccount:backstage:reader',
  'oidc-user-token-LEAKCANARY': 'alice',
  'google-user-token-LEAKCANARY': 'bob@example.com',
  'aks-user-token-LEAKCANARY': 'carol',
};

// The EKS cluster's IAM identity: the API stand-in verifies the token's SigV4 signature.
const AWS_MAIN = { accessKeyId: 'AKIAE2EEXAMPLE000001', secretAccessKey: 'e2eSecret/LEAKCANARY+key' };

function verifyEks(token) {
  try {
    const v = verifyEksToken(token, {
      clusterId: 'eks',
      secretFor: (k) => (k === AWS_MAIN.accessKeyId ? AWS_MAIN.secretAccessKey : undefined),
    });
    return `arn:aws:iam::123456789012:user/${v.accessKeyId}`;
  } catch {
    return undefined;
  }
}

// The `azure` and `microsoftEntraId` clusters: the strategies' native chain reads these
// (real) environment variables at construction and gets client-secret tokens from the Entra ID
// stand-in; the API server accepts only tokens that stand-in issued for the cluster's scope.
const ENTRA_SCOPE = 'api://e2e-cluster/.default';
let entra;
let envBefore;

function verifyEntra(token) {
  const aks = entra.verify(token, AKS_SCOPE);
  if (aks) return `aad:${aks.clientId}`;
  const other = entra.verify(token, ENTRA_SCOPE);
  return other ? `entra:${other.clientId}` : undefined;
}

let api;

beforeAll(async () => {
  entra = await new EntraStandIn({ clients: { 'e2e-app': { secret: 'e2e-secret-LEAKCANARY' } } }).start();
  const azureEnv = {
    AZURE_TENANT_ID: entra.tenantId,
    AZURE_CLIENT_ID: 'e2e-app',
    AZURE_CLIENT_SECRET: 'e2e-secret-LEAKCANARY',
    AZURE_AUTHORITY_HOST: entra.url,
    AZURE_TOKEN_CREDENTIALS: 'EnvironmentCredential',
  };
  envBefore = Object.fromEntries(Object.keys(azureEnv).map((k) => [k, process.env[k] ?? null]));
  await setEnv(azureEnv);
  api = await new KubeApiStandIn({
    tokens: TOKENS,
    verifyToken: (token) => verifyEks(token) ?? verifyEntra(token),
    concierge: { users: { 'alice-id-token-LEAKCANARY': 'alice', 'dave-id-token-LEAKCANARY': 'dave' } },
  }).start();
});

afterAll(async () => {
  await api.stop();
  await entra.stop();
  await setEnv(envBefore);
});

function clusters() {
  const common = { url: api.url, caData: api.caData };
  return [
    { name: 'sa', authProvider: 'serviceAccount', serviceAccountToken: 'sa-token-LEAKCANARY', ...common },
    { name: 'oidc', authProvider: 'oidc', oidcTokenProvider: 'okta', ...common },
    { name: 'gke', authProvider: 'google', ...common },
    { name: 'aks', authProvider: 'aks', ...common },
    {
      name: 'pinniped',
      authProvider: 'pinniped',
      authMetadata: { 'kubernetes.io/x-pinniped-audience': 'backstage-aud' },
      ...common,
    },
    { name: 'eks', authProvider: 'aws', ...common },
    { name: 'aks-aad', authProvider: 'azure', ...common },
    {
      name: 'entra',
      authProvider: 'microsoftEntraId',
      authMetadata: { 'kubernetes.io/microsoft-entra-id-scope': ENTRA_SCOPE },
      ...common,
    },
  ];
}

function configFeature(clusterList) {
  return mockServices.rootConfig.factory({
    data: {
      aws: { mainAccount: AWS_MAIN },
      kubernetes: {
        serviceLocatorMethod: { type: 'multiTenant' },
        clusterLocatorMethods: [{ type: 'config', clusters: clusterList }],
      },
    },
  });
}

const ENTITY = {
  apiVersion: 'backstage.io/v1alpha1',
  kind: 'Component',
  metadata: { name: 'my-service', namespace: 'default', annotations: { 'backstage.io/kubernetes-id': 'my-service' } },
  spec: { type: 'service', owner: 'team-a', lifecycle: 'production' },
};

async function startBackstage(clusterList, extra = []) {
  const backend = await startTestBackend({
    features: [
      kubernetesPlugin,
      nativeAuthModule,
      configFeature(clusterList),
      catalogServiceMock.factory({ entities: [ENTITY] }),
      ...extra,
    ],
  });
  const base = `http://127.0.0.1:${backend.server.port()}/api/kubernetes`;
  return { backend, base };
}

async function proxy(base, cluster, headers = {}) {
  const res = await fetch(`${base}/proxy/api/v1/namespaces`, {
    headers: {
      Authorization: mockCredentials.user.header(),
      'Backstage-Kubernetes-Cluster': cluster,
      ...headers,
    },
  });
  return { status: res.status, body: await res.text() };
}

describe('a Backstage backend using the native module', () => {
  let backstage;

  beforeAll(async () => {
    backstage = await startBackstage(clusters());
  });

  afterAll(async () => {
    await backstage.backend.stop();
  });

  beforeEach(() => {
    api.requests.length = 0;
  });

  it('lists the configured clusters', async () => {
    const res = await fetch(`${backstage.base}/clusters`, {
      headers: { Authorization: mockCredentials.user.header() },
    });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.items).toEqual([
      { name: 'sa', authProvider: 'serviceAccount' },
      { name: 'oidc', authProvider: 'oidc', oidcTokenProvider: 'okta' },
      { name: 'gke', authProvider: 'google' },
      { name: 'aks', authProvider: 'aks' },
      { name: 'pinniped', authProvider: 'pinniped', auth: { audience: 'backstage-aud' } },
      { name: 'eks', authProvider: 'aws' },
      { name: 'aks-aad', authProvider: 'azure' },
      { name: 'entra', authProvider: 'microsoftEntraId' },
    ]);
  });

  it('proxies with the service-account token', async () => {
    const r = await proxy(backstage.base, 'sa');
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).metadata.user).toBe('system:serviceaccount:backstage:reader');
    expect(api.requests).toEqual([
      { method: 'GET', path: '/api/v1/namespaces', user: 'system:serviceaccount:backstage:reader', via: 'bearer' },
    ]);
  });

  it('proxies with the OIDC token from the Backstage-Kubernetes-Authorization-OIDC-okta header', async () => {
    const r = await proxy(backstage.base, 'oidc', { 'Backstage-Kubernetes-Authorization-OIDC-okta': 'oidc-user-token-LEAKCANARY' });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).metadata.user).toBe('alice');
    expect(api.requests.map((q) => q.user)).toEqual(['alice']);
  });

  it('proxies with the Google token from the Backstage-Kubernetes-Authorization-Google header', async () => {
    const r = await proxy(backstage.base, 'gke', { 'Backstage-Kubernetes-Authorization-Google': 'google-user-token-LEAKCANARY' });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).metadata.user).toBe('bob@example.com');
  });

  it('proxies with the AKS token from the Backstage-Kubernetes-Authorization-AKS header', async () => {
    const r = await proxy(backstage.base, 'aks', { 'Backstage-Kubernetes-Authorization-AKS': 'aks-user-token-LEAKCANARY' });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).metadata.user).toBe('carol');
  });

  it('proxies with a Pinniped client certificate for the user in the ClusterIDToken header', async () => {
    const header = { 'Backstage-Kubernetes-Authorization-Pinniped-ClusterIDToken': 'alice-id-token-LEAKCANARY' };
    const r = await proxy(backstage.base, 'pinniped', header);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).metadata.user).toBe('alice');
    expect(api.requests.at(-1)).toMatchObject({ path: '/api/v1/namespaces', user: 'alice', via: 'x509' });
    const exchanges = api.tcr.length;
    const again = await proxy(backstage.base, 'pinniped', header);
    expect(JSON.parse(again.body).metadata.user).toBe('alice');
    expect(api.tcr.length).toBe(exchanges);
    const dave = await proxy(backstage.base, 'pinniped', {
      'Backstage-Kubernetes-Authorization-Pinniped-ClusterIDToken': 'dave-id-token-LEAKCANARY',
    });
    expect(JSON.parse(dave.body).metadata.user).toBe('dave');
  });

  it('proxies to the EKS cluster with a SigV4-presigned token the API server verifies', async () => {
    const r = await proxy(backstage.base, 'eks');
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).metadata.user).toBe(`arn:aws:iam::123456789012:user/${AWS_MAIN.accessKeyId}`);
    expect(api.requests).toEqual([
      { method: 'GET', path: '/api/v1/namespaces', user: `arn:aws:iam::123456789012:user/${AWS_MAIN.accessKeyId}`, via: 'bearer' },
    ]);
  });

  it('proxies to the azure cluster with an Entra ID token for the AKS scope, fetched once', async () => {
    entra.requests.length = 0;
    for (let i = 0; i < 3; i++) {
      const r = await proxy(backstage.base, 'aks-aad');
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body).metadata.user).toBe('aad:e2e-app');
    }
    expect(entra.tokenRequests().map((q) => [q.clientId, q.scope, q.via])).toEqual([['e2e-app', AKS_SCOPE, 'secret']]);
  });

  it("proxies to the microsoftEntraId cluster with a token for the cluster's scope", async () => {
    const r = await proxy(backstage.base, 'entra');
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).metadata.user).toBe('entra:e2e-app');
  });

  it('a wrong user token reaches the API server and is refused there', async () => {
    const r = await proxy(backstage.base, 'oidc', { 'Backstage-Kubernetes-Authorization-OIDC-okta': 'stolen' });
    expect(r.status).toBe(401);
    expect(api.requests.map((q) => q.user)).toEqual([undefined]);
  });

  it('fails the proxied request with our message when the OIDC token is missing', async () => {
    const r = await proxy(backstage.base, 'oidc');
    expect(r.status).toBe(500);
    expect(r.body).toContain('Auth token not found under oidc.okta in request body');
    expect(api.requests).toEqual([]);
  });

  it('passes a raw Backstage-Kubernetes-Authorization header through verbatim', async () => {
    const r = await proxy(backstage.base, 'oidc', { 'Backstage-Kubernetes-Authorization': 'Bearer aks-user-token-LEAKCANARY' });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).metadata.user).toBe('carol');
  });

  it('fetches workloads for an entity with the token from the request body', async () => {
    const res = await fetch(`${backstage.base}/services/my-service`, {
      method: 'POST',
      headers: { Authorization: mockCredentials.user.header(), 'Content-Type': 'application/json' },
      body: JSON.stringify({
        entity: ENTITY,
        auth: {
          oidc: { okta: 'oidc-user-token-LEAKCANARY' },
          google: 'google-user-token-LEAKCANARY',
          aks: 'aks-user-token-LEAKCANARY',
          pinniped: { clusteridtoken: 'alice-id-token-LEAKCANARY' },
        },
      }),
    });
    const body = await res.json();
    expect({ status: res.status, error: body.error }).toEqual({ status: 200, error: undefined });
    const byCluster = Object.fromEntries(body.items.map((i) => [i.cluster.name, i]));
    expect(Object.keys(byCluster).sort()).toEqual(['aks', 'aks-aad', 'eks', 'entra', 'gke', 'oidc', 'pinniped', 'sa']);
    for (const item of body.items) {
      expect(item.errors).toEqual([]);
    }
    const users = new Set(api.requests.map((q) => q.user));
    expect(users).toEqual(
      new Set([
        'system:serviceaccount:backstage:reader',
        'alice',
        'bob@example.com',
        'carol',
        `arn:aws:iam::123456789012:user/${AWS_MAIN.accessKeyId}`,
        'aad:e2e-app',
        'entra:e2e-app',
      ]),
    );
    expect(api.requests.filter((q) => q.via === 'x509').length).toBeGreaterThan(0);
  });
});

// Backstage's PinnipedHelper.test.ts (kubernetes-node), "TLS Clusters": a custom `pinniped`
// strategy built on the helper, registered through the extension point, used by the proxy.
describe('Pinniped - tokenCredentialRequest with our PinnipedHelper', () => {
  function helperModule(apiGroup) {
    return createBackendModule({
      pluginId: 'kubernetes',
      moduleId: 'pinniped-helper',
      register(env) {
        env.registerInit({
          deps: { authStrategy: kubernetesAuthStrategyExtensionPoint },
          async init({ authStrategy }) {
            const helper = new PinnipedHelper();
            authStrategy.addAuthStrategy('pinniped', {
              async getCredential(clusterDetails, authConfig) {
                const certs = await helper.tokenCredentialRequest(clusterDetails, {
                  clusterScopedIdToken: authConfig.pinniped.clusteridtoken,
                  authenticator: { apiGroup: 'authentication.concierge.pinniped.dev', kind: 'JWTAuthenticator', name: 'supervisor' },
                  ...(apiGroup && { tokenCredentialRequest: { apiGroup } }),
                });
                return { type: 'x509 client certificate', key: certs.key, cert: certs.cert };
              },
              validateCluster: () => [],
              presentAuthMetadata: () => ({}),
            });
          },
        });
      },
    });
  }

  async function startWithHelper(apiGroup) {
    const backend = await startTestBackend({
      features: [
        kubernetesPlugin,
        helperModule(apiGroup),
        configFeature([{ name: 'pinniped', authProvider: 'pinniped', url: api.url, caData: api.caData }]),
        catalogServiceMock.factory({ entities: [ENTITY] }),
      ],
    });
    return { backend, base: `http://127.0.0.1:${backend.server.port()}/api/kubernetes` };
  }

  beforeEach(() => {
    api.requests.length = 0;
    api.tcr.length = 0;
  });

  it.each([
    ['Should get certs data from Concierge', undefined],
    ['Should get certs data from TMC-flavoured Pinniped', 'login.concierge.pinniped.tmc.cloud.vmware.com/v1alpha1'],
  ])('%s', async (_name, apiGroup) => {
    const { backend, base } = await startWithHelper(apiGroup);
    try {
      const r = await proxy(base, 'pinniped', { 'Backstage-Kubernetes-Authorization-Pinniped-ClusterIDToken': 'alice-id-token-LEAKCANARY' });
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body).metadata.user).toBe('alice');
      expect(api.tcr.map((t) => t.path)).toEqual([
        `/apis/${apiGroup ?? 'login.concierge.pinniped.dev/v1alpha1'}/tokencredentialrequests`,
      ]);
      expect(api.requests).toEqual([{ method: 'GET', path: '/api/v1/namespaces', user: 'alice', via: 'x509' }]);
    } finally {
      await backend.stop();
    }
  });

  it('Should get an error when Concierge return an error', async () => {
    const { backend, base } = await startWithHelper();
    try {
      const r = await proxy(base, 'pinniped', { 'Backstage-Kubernetes-Authorization-Pinniped-ClusterIDToken': 'stolen' });
      expect(r.status).toBe(500);
      expect(r.body).toContain('error');
      expect(r.body).toContain('authentication failed');
      expect(api.tcr).toHaveLength(1);
      expect(api.requests).toHaveLength(0);
    } finally {
      await backend.stop();
    }
  });
});

describe('startup validation through the native strategies', () => {
  it('an oidc cluster without a token provider aborts startup with Backstage message', async () => {
    await expect(
      startBackstage([{ name: 'bad', authProvider: 'oidc', url: 'https://127.0.0.1:1' }]),
    ).rejects.toThrow("Invalid cluster 'bad': Must specify a token provider for 'oidc' strategy");
  });

  it('an auth provider nobody registered fails validation with Backstage message', async () => {
    await expect(
      startBackstage([{ name: 'custom', authProvider: 'customSso', url: 'https://127.0.0.1:1' }]),
    ).rejects.toThrow(`Invalid cluster 'custom': authProvider "customSso" has no config associated with it`);
  });

  it('a microsoftEntraId cluster without a scope aborts startup with a clear message', async () => {
    await expect(
      startBackstage([{ name: 'noscope', authProvider: 'microsoftEntraId', url: 'https://127.0.0.1:1' }]),
    ).rejects.toThrow("Invalid cluster 'noscope': microsoftEntraId: the cluster has no Microsoft Entra ID scope");
  });

  it('forbids custom auth strategies with dashes', async () => {
    const dashed = createBackendModule({
      pluginId: 'kubernetes',
      moduleId: 'dashed-auth',
      register(env) {
        env.registerInit({
          deps: { authStrategy: kubernetesAuthStrategyExtensionPoint },
          async init({ authStrategy }) {
            authStrategy.addAuthStrategy('my-aks', new AksStrategy());
          },
        });
      },
    });
    await expect(startBackstage(clusters(), [dashed])).rejects.toThrow('Strategy name can not include dashes');
  });
});
