'use strict';
// Every upstream (upstreams.js) meets every fault (helpers/faults.js): each getCredential
// settles within timeoutMs + 1 s with an Error naming the upstream, concurrent callers all
// settle, and the next call after the fault clears succeeds. Figures go to
// results/faults.json.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { FaultServer, RESPONSE_FAULTS, ENDPOINT_FAULTS, UNRESOLVABLE } = require('../helpers/faults');
const { replaceAwsEnv } = require('../helpers/real-env');
const { upstreams } = require('./upstreams');
const { FULL, observe, leaks, record, within, fingerprint } = require('./record');
const { pki } = require('../helpers/faults');

const TIMEOUT_MS = 2000;
const CONCURRENT = FULL ? 8 : 3;
const figures = {};
let tmp;
let saved;
let n = 0;

beforeAll(async () => {
  saved = await replaceAwsEnv({});
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'faults-'));
  fingerprint(pki().server.keyPem);
});

afterAll(async () => {
  await replaceAwsEnv(saved);
  fs.rmSync(tmp, { recursive: true, force: true });
  const longest = Math.max(...Object.values(figures).map((f) => f.longestSettleMs));
  record('faults', { timeoutMs: TIMEOUT_MS, concurrentCallers: CONCURRENT, upstreams: figures, longestSettleMs: longest });
  console.log(`faults: ${JSON.stringify(figures)}`);
  expect(leaks()).toEqual([]);
});

/** The AWS variables every upstream starts from: no credentials, files or metadata service. */
async function awsEnv(vars) {
  await replaceAwsEnv({
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: path.join(tmp, 'absent-config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(tmp, 'absent-credentials'),
    ...vars,
  });
}

describe.each(upstreams.map((u) => [u.name, u]))('%s under faults', (name, upstream) => {
  let server;
  const stats = { faults: {}, calls: 0, longestSettleMs: 0 };
  figures[name] = stats;

  beforeAll(async () => {
    server = await new FaultServer(upstream).start();
  });
  afterAll(() => server.stop());

  const good = () => (upstream.scheme === 'https' ? server.httpsUrl : server.httpUrl);
  const ctxFor = (endpoint) => ({ endpoint, caData: server.caData, timeoutMs: TIMEOUT_MS });
  async function instance(endpoint) {
    await awsEnv(upstream.env ? upstream.env(endpoint) : {});
    return upstream.make(ctxFor(endpoint));
  }

  /** `CONCURRENT` calls during a fault: all settle in time with an Error naming the upstream. */
  async function expectAllFail(strategy, ctx, fault) {
    const outcomes = await Promise.all(
      Array.from({ length: CONCURRENT }, () => within(upstream.call(strategy, ctx, ++n), TIMEOUT_MS + 1000 + 2000)),
    );
    stats.faults[fault] = (stats.faults[fault] ?? 0) + outcomes.length;
    for (const o of outcomes) {
      stats.calls += 1;
      stats.longestSettleMs = Math.max(stats.longestSettleMs, Math.round(o.ms));
      if (o.error) observe(`${name}/${fault}`, o.error);
      expect({ fault, pending: !!o.pending, resolved: 'value' in o }).toEqual({ fault, pending: false, resolved: false });
      expect(o.error).toBeInstanceOf(Error);
      expect(o.error.message).toMatch(upstream.names);
      expect(o.ms).toBeLessThan(TIMEOUT_MS + 1000);
    }
  }

  async function expectSuccess(strategy, ctx) {
    const o = await within(upstream.call(strategy, ctx, ++n), TIMEOUT_MS + 1000);
    if (o.error) observe(`${name}/recovery`, o.error);
    expect(o.error?.message).toBeUndefined();
    expect(o.value).toHaveProperty('type');
  }

  it.each(RESPONSE_FAULTS)('%s: every caller gets an Error naming the upstream in time; then it recovers', async (fault) => {
    const strategy = await instance(good());
    server.setFault(fault);
    try {
      await expectAllFail(strategy, ctxFor(good()), fault);
    } finally {
      server.setFault(null);
    }
    await expectSuccess(strategy, ctxFor(good()));
  }, 30_000);

  it.each(ENDPOINT_FAULTS)('%s: every caller gets an Error naming the upstream in time; then it recovers', async (fault) => {
    const bad = fault === 'wrong-ca' ? server.wrongCaUrl : `${upstream.scheme === 'https' || fault === 'dns' && upstream.name === 'ECS' ? 'https' : 'http'}://${UNRESOLVABLE}:${server.port}`;
    const strategy = await instance(bad);
    await expectAllFail(strategy, ctxFor(bad), fault);
    // The fault "clears" when the address is right again: per call where the address is per
    // call, else (process environment) for a strategy made after the change.
    const next = upstream.perCallEndpoint ? strategy : await instance(good());
    await expectSuccess(next, ctxFor(good()));
  }, 30_000);
});
