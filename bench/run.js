'use strict';
// `npm run bench`: per-call cost of our strategies beside Backstage 0.21.11's JS strategies
// on the same inputs, in one Node process. Machines are noisy: compare the ratios of one run.
// Writes bench/results.json and prints a Markdown table.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const backstage = require('@backstage/plugin-kubernetes-backend');
const { PinnipedHelper: BackstagePinnipedHelper } = require('@backstage/plugin-kubernetes-node');
const { KubeApiStandIn } = require('../__test__/helpers/kube-api');
const native = require('..');
const binding = require('../binding.js');

const SMOKE = process.argv.includes('--smoke');
const BATCH = SMOKE ? 2_000 : 200_000;
const BATCHES = SMOKE ? 2 : 7;

async function measure(fn, batch = BATCH) {
  for (let i = 0; i < batch / 4; i++) await fn();
  const perCall = [];
  for (let b = 0; b < BATCHES; b++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < batch; i++) await fn();
    perCall.push(Number(process.hrtime.bigint() - t0) / batch);
  }
  perCall.sort((a, b) => a - b);
  return perCall[Math.floor(perCall.length / 2)];
}

const cd = {
  name: 'c',
  url: 'https://127.0.0.1:6443',
  authMetadata: {
    'kubernetes.io/auth-provider': 'oidc',
    'kubernetes.io/oidc-token-provider': 'okta',
    serviceAccountToken: 'sa-token',
  },
};
const auth = { aks: 'aks-token', google: 'google-token', oidc: { okta: 'oidc-token' } };

async function plainJsAsync() {
  return { type: 'bearer token', token: auth.aks };
}

const cases = [
  ['aks', new backstage.AksStrategy(), new native.AksStrategy()],
  ['google', new backstage.GoogleStrategy(), new native.GoogleStrategy()],
  ['oidc', new backstage.OidcStrategy(), new native.OidcStrategy()],
  ['localKubectlProxy (anonymous)', new backstage.AnonymousStrategy(), new native.AnonymousStrategy()],
  ['serviceAccount (static token)', new backstage.ServiceAccountStrategy(), new native.ServiceAccountStrategy()],
];

/** Pinniped: Backstage's helper (one TokenCredentialRequest per call) against our strategy's
 *  cached path, on the loopback Concierge stand-in; plus 1000 concurrent calls. */
async function pinniped(floorNs) {
  const api = await new KubeApiStandIn({
    concierge: { users: { 'alice-id-token': 'alice' }, reuseCertificates: true },
  }).start();
  try {
    const cd = { name: 'p', url: api.url, caData: api.caData, authMetadata: {} };
    const quietLogger = { debug() {}, info() {}, warn() {}, error() {}, child: () => quietLogger };
    const helper = new BackstagePinnipedHelper(quietLogger);
    const theirsParams = {
      clusterScopedIdToken: 'alice-id-token',
      authenticator: { apiGroup: 'authentication.concierge.pinniped.dev', kind: 'JWTAuthenticator', name: 'supervisor' },
    };
    const theirsNs = await measure(() => helper.tokenCredentialRequest(cd, theirsParams), SMOKE ? 4 : 40);
    const ours = new native.PinnipedStrategy();
    const auth = { pinniped: { clusteridtoken: 'alice-id-token' } };
    api.tcr.length = 0;
    const t0 = process.hrtime.bigint();
    await Promise.all(Array.from({ length: 1000 }, () => ours.getCredential(cd, auth)));
    const concurrentMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const concurrentExchanges = api.tcr.length;
    const oursNs = await measure(() => ours.getCredential(cd, auth), SMOKE ? 2_000 : 50_000);
    return {
      name: 'pinniped (Backstage PinnipedHelper vs our cached PinnipedStrategy)',
      backstageNs: theirsNs,
      oursNs,
      speedup: theirsNs / oursNs,
      vsFloor: oursNs / floorNs,
      concurrent1000: { ms: concurrentMs, tokenCredentialRequests: concurrentExchanges },
    };
  } finally {
    await api.stop();
  }
}

async function main() {
  const rows = [];
  const floorNs = await measure(() => binding.napiFloor());
  const plainNs = await measure(() => plainJsAsync());
  for (const [name, theirs, ours] of cases) {
    const theirsNs = await measure(() => theirs.getCredential(cd, auth));
    const oursNs = await measure(() => ours.getCredential(cd, auth));
    rows.push({ name, backstageNs: theirsNs, oursNs, speedup: theirsNs / oursNs, vsFloor: oursNs / floorNs });
  }
  rows.push(await pinniped(floorNs));
  const result = {
    date: new Date().toISOString(),
    machine: `${os.cpus().length} x ${os.cpus()[0].model}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
    batch: BATCH,
    batches: BATCHES,
    napiFloorNs: floorNs,
    plainJsAsyncNs: plainNs,
    rows,
  };
  const f = (ns) => (ns / 1000).toFixed(3);
  console.log(`\nPer-call cost, awaited, median of ${BATCHES} batches of ${BATCH} (${result.machine})\n`);
  console.log(`napi floor (native call returning a resolved promise): ${f(floorNs)} us; plain JS async function: ${f(plainNs)} us\n`);
  console.log('| strategy | Backstage 0.21.11 (us/call) | ours (us/call) | ours/Backstage speed | ours vs napi floor |');
  console.log('|---|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(`| ${r.name} | ${f(r.backstageNs)} | ${f(r.oursNs)} | ${r.speedup.toFixed(2)}x | ${r.vsFloor.toFixed(2)}x |`);
  }
  const p = rows.find((r) => r.concurrent1000);
  console.log(
    `\npinniped, 1000 concurrent getCredential calls for one user (ours): ${p.concurrent1000.ms.toFixed(0)} ms, ${p.concurrent1000.tokenCredentialRequests} TokenCredentialRequest`,
  );
  if (!SMOKE) {
    fs.writeFileSync(path.join(__dirname, 'results.json'), JSON.stringify(result, null, 2) + '\n');
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
