'use strict';
// Leaks: calls through every strategy's cached path (1,000,000 each with RELIABILITY_FULL=1)
// keep RSS growth under 10 MB and open descriptors flat; calls through every refresh path
// against the stand-ins (10,000 each in the full run) keep sockets within the pool the
// concurrency needs. Each measurement runs in its own process (leaks.child.js).

const { execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { promisify } = require('node:util');
const { targets } = require('./targets');
const { upstreams } = require('./upstreams');
const { FaultServer } = require('../helpers/faults');
const { KubeApiStandIn } = require('../helpers/kube-api');
const { FULL, MARK, observe, leaks, record } = require('./record');

const run = promisify(execFile);
const CACHED_CALLS = Number(process.env.LEAK_CACHED_CALLS ?? (FULL ? 1_000_000 : 20_000));
const REFRESH_CALLS = Number(process.env.LEAK_REFRESH_CALLS ?? (FULL ? 10_000 : 500));
const MB = 1024 * 1024;
const figures = { cached: {}, refresh: {} };
let tmp;

async function child(args, env = {}) {
  const base = { ...process.env };
  for (const k of Object.keys(base)) if (k.startsWith('AWS_')) delete base[k];
  // A 1 MB young generation: by default V8 grows it (to 16 MB and more) under promise churn,
  // which shows as RSS growth of any JS loop, addon or not; capped, RSS growth is the leak.
  const { stdout, stderr } = await run(process.execPath, ['--expose-gc', '--max-semi-space-size=1', path.join(__dirname, 'leaks.child.js'), ...args], {
    env: {
      ...base,
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_CONFIG_FILE: path.join(tmp, 'absent'),
      AWS_SHARED_CREDENTIALS_FILE: path.join(tmp, 'absent'),
      AWS_ENDPOINT_URL_STS: 'http://127.0.0.1:1',
      ...env,
    },
    maxBuffer: 16 * MB,
    timeout: 900_000,
  });
  observe(`leaks ${args.join(' ')}`, stdout + stderr);
  return JSON.parse(stdout.trim().split('\n').pop());
}

let concierge;
beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'leaks-'));
  const token = `leak-token-${MARK}`;
  concierge = await new KubeApiStandIn({ concierge: { users: { [token]: 'leak-user' }, reuseCertificates: true } }).start();
  concierge.token = token;
});
afterAll(async () => {
  await concierge.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
  record('leaks', figures);
  console.log(`leaks: ${JSON.stringify(figures)}`);
  expect(leaks()).toEqual([]);
});

describe('cached paths', () => {
  it.each(targets.filter((t) => t.cached).map((t) => [t.name]))(`%s: ${CACHED_CALLS} calls, RSS growth < 10 MB, descriptors flat`, async (name) => {
    const r = await child(['cached', name, String(CACHED_CALLS)], {
      RELI_CONCIERGE: JSON.stringify({ url: concierge.url, caData: concierge.caData, token: concierge.token }),
    });
    figures.cached[name] = { calls: r.calls, ms: r.ms, rssGrowthMB: +(r.rssGrowth / MB).toFixed(2), heapUsedGrowthMB: +(r.heapUsedGrowth / MB).toFixed(2), fdGrowth: r.fdsAfter - r.fdsBefore };
    expect(r.rssGrowth).toBeLessThan(10 * MB);
    expect(r.fdsAfter - r.fdsBefore).toBeLessThanOrEqual(0);
  }, 900_000);
});

describe('refresh paths against the stand-ins', () => {
  it.each(upstreams.filter((u) => u.refreshLeakCheck !== false).map((u) => [u.name, u]))(`%s: ${REFRESH_CALLS} calls, sockets within the pool`, async (name, upstream) => {
    const server = await new FaultServer(upstream).start();
    try {
      const endpoint = upstream.scheme === 'https' ? server.httpsUrl : server.httpUrl;
      const env = Object.fromEntries(Object.entries(upstream.env ? upstream.env(endpoint) : {}).filter(([, v]) => v !== null));
      if (upstream.env && 'AWS_EC2_METADATA_DISABLED' in upstream.env(endpoint)) env.AWS_EC2_METADATA_DISABLED = 'false';
      const r = await child(['refresh', name, String(REFRESH_CALLS)], { ...env, RELI_ENDPOINT: endpoint, RELI_CA_DATA: server.caData });
      figures.refresh[name] = {
        calls: r.calls,
        upstreamRequests: server.requests,
        ms: r.ms,
        socketsBefore: r.socketsBefore,
        socketsAfter: r.socketsAfter,
        concurrency: r.concurrency,
        rssGrowthMB: +(r.rssGrowth / MB).toFixed(2),
      };
      expect(server.requests).toBeGreaterThanOrEqual(r.calls);
      // Flat after the warm-up filled the pools. The absolute bound is loose: the SDK's IMDS
      // client keeps ~2.5 connections per call in flight (token, role, credentials); 3 more
      // sockets are the child's stdio.
      expect(r.socketsAfter).toBeLessThanOrEqual(3 + 3 * r.concurrency);
      // Within the pool: our HTTP client keeps at most 16 idle connections per host
      // (POOL_MAX_IDLE_PER_HOST in src/http.rs); a leak grows with the calls.
      expect(r.socketsAfter - r.socketsBefore).toBeLessThanOrEqual(16);
    } finally {
      await server.stop();
    }
  }, 900_000);
});
