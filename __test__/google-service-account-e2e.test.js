'use strict';
// The real Backstage backend (@backstage/plugin-kubernetes-backend under startTestBackend,
// the same harness as backstage-e2e.test.js) with our module, a `googleServiceAccount`
// cluster, the key in `kubernetes.googleServiceAccountCredentials`, the Google token endpoint
// stand-in, and the Kubernetes API stand-in accepting only tokens that endpoint issued.

const { startTestBackend, mockServices, mockCredentials } = require('@backstage/backend-test-utils');
const { catalogServiceMock } = require('@backstage/plugin-catalog-node/testUtils');
const { KubeApiStandIn } = require('./helpers/kube-api');
const { GoogleStandIn } = require('./helpers/google-standin');

const kubernetesPlugin = require('@backstage/plugin-kubernetes-backend').default;
const nativeAuthModule = require('../module');

const ENTITY = {
  apiVersion: 'backstage.io/v1alpha1',
  kind: 'Component',
  metadata: { name: 'my-service', namespace: 'default', annotations: { 'backstage.io/kubernetes-id': 'my-service' } },
  spec: { type: 'service', owner: 'team-a', lifecycle: 'production' },
};

let google;
let api;
let key;
let backend;
let base;

beforeAll(async () => {
  google = await new GoogleStandIn().start();
  key = google.newServiceAccount({ clientEmail: 'backstage-reader@test-project.iam.gserviceaccount.com' });
  api = await new KubeApiStandIn({ verifyToken: (t) => google.subjectOf(t) }).start();
  backend = await startTestBackend({
    features: [
      kubernetesPlugin,
      nativeAuthModule,
      mockServices.rootConfig.factory({
        data: {
          kubernetes: {
            googleServiceAccountCredentials: JSON.stringify(key),
            serviceLocatorMethod: { type: 'multiTenant' },
            clusterLocatorMethods: [
              {
                type: 'config',
                clusters: [{ name: 'gke-sa', authProvider: 'googleServiceAccount', url: api.url, caData: api.caData }],
              },
            ],
          },
        },
      }),
      catalogServiceMock.factory({ entities: [ENTITY] }),
    ],
  });
  base = `http://127.0.0.1:${backend.server.port()}/api/kubernetes`;
});

afterAll(async () => {
  await backend?.stop();
  await api?.stop();
  await google?.stop();
});

async function proxy() {
  const res = await fetch(`${base}/proxy/api/v1/namespaces`, {
    headers: { Authorization: mockCredentials.user.header(), 'Backstage-Kubernetes-Cluster': 'gke-sa' },
  });
  return { status: res.status, body: await res.text() };
}

it('lists the cluster', async () => {
  const res = await fetch(`${base}/clusters`, { headers: { Authorization: mockCredentials.user.header() } });
  expect((await res.json()).items).toEqual([{ name: 'gke-sa', authProvider: 'googleServiceAccount' }]);
});

it('proxies with an access token from the JWT-bearer exchange, fetched once and then cached', async () => {
  const first = await proxy();
  expect(first.status).toBe(200);
  expect(JSON.parse(first.body).metadata.user).toBe('backstage-reader@test-project.iam.gserviceaccount.com');
  const second = await proxy();
  expect(JSON.parse(second.body).metadata.user).toBe('backstage-reader@test-project.iam.gserviceaccount.com');
  expect(google.requests.filter((r) => r.kind === 'token')).toEqual([
    expect.objectContaining({ grant: 'urn:ietf:params:oauth:grant-type:jwt-bearer', ok: true }),
  ]);
  expect(api.requests.map((r) => [r.user, r.via])).toEqual([
    ['backstage-reader@test-project.iam.gserviceaccount.com', 'bearer'],
    ['backstage-reader@test-project.iam.gserviceaccount.com', 'bearer'],
  ]);
});

it('fetches workloads for an entity', async () => {
  const res = await fetch(`${base}/services/my-service`, {
    method: 'POST',
    headers: { Authorization: mockCredentials.user.header(), 'Content-Type': 'application/json' },
    body: JSON.stringify({ entity: ENTITY, auth: {} }),
  });
  const body = await res.json();
  expect(res.status).toBe(200);
  expect(body.items.map((i) => [i.cluster.name, i.errors])).toEqual([['gke-sa', []]]);
});

it('the API stand-in refuses a token the Google stand-in did not issue', async () => {
  const res = await fetch(`${base}/proxy/api/v1/namespaces`, {
    headers: {
      Authorization: mockCredentials.user.header(),
      'Backstage-Kubernetes-Cluster': 'gke-sa',
      'Backstage-Kubernetes-Authorization': 'Bearer ya29.LEAKCANARY-forged',
    },
  });
  expect(res.status).toBe(401);
});
