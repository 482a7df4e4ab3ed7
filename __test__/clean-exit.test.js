'use strict';
// A Node process that constructs every strategy and makes calls (including one that goes
// through the Tokio runtime) must exit by itself: the addon holds no live handle.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const script = `
const n = require(${JSON.stringify(path.resolve(__dirname, '..'))});
const fs = require('node:fs');
(async () => {
  const tokenPath = process.argv[1];
  const cd = { name: 'c', url: 'https://127.0.0.1:1', authMetadata: { 'kubernetes.io/oidc-token-provider': 'okta' } };
  const all = [new n.AksStrategy(), new n.AnonymousStrategy(), new n.GoogleStrategy(), new n.OidcStrategy(),
    new n.ServiceAccountStrategy({ tokenPath }), new n.DispatchStrategy({ authStrategyMap: { aks: new n.AksStrategy() } })];
  let settled = 0;
  for (const s of all) {
    for (let i = 0; i < 100; i++) {
      try { await s.getCredential({ ...cd, authMetadata: { ...cd.authMetadata, 'kubernetes.io/auth-provider': 'aks' } }, { aks: 't', google: 'g', oidc: { okta: 'o' } }); } catch (e) {}
      settled++;
    }
    s.validateCluster({});
    s.presentAuthMetadata({});
  }
  const sa = new n.ServiceAccountStrategy({ tokenPath: tokenPath + '.missing', cache: false });
  await sa.getCredential(cd, {}).catch(() => settled++);
  console.log('settled ' + settled);
})();
`;

it('a process using every strategy exits by itself', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'exit-'));
  const tokenPath = path.join(dir, 'token');
  fs.writeFileSync(tokenPath, 'tok');
  const started = Date.now();
  const child = spawn(process.execPath, ['-e', script, tokenPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  const code = await new Promise((resolve) => child.on('exit', (c, signal) => resolve(signal ?? c)));
  clearTimeout(killer);
  fs.rmSync(dir, { recursive: true, force: true });
  expect({ code, err }).toEqual({ code: 0, err: '' });
  expect(out.trim()).toBe('settled 601');
  // Exiting takes the process's own start-up and the calls; a live handle would hit the 10 s kill.
  expect(Date.now() - started).toBeLessThan(8_000);
});

// Every export of the reliability suite's table (targets.js), each strategy's cached path,
// and a call that reaches each loopback upstream (upstreams.js): the process must exit by
// itself within 1 s of its last call settling, so no pooled connection, timer or runtime
// thread keeps it alive.
const { KubeApiStandIn } = require('./helpers/kube-api');
const { FaultServer } = require('./helpers/faults');
const { upstreams } = require('./reliability/upstreams');

const tableScript = `
const path = require('node:path');
const fs = require('node:fs');
const os = require('node:os');
const dir = ${JSON.stringify(path.join(__dirname, 'reliability'))};
const { targets } = require(path.join(dir, 'targets.js'));
const { upstreams } = require(path.join(dir, 'upstreams.js'));
(async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'exit-'));
  const ctx = { tmp, concierge: JSON.parse(process.env.EXIT_CONCIERGE) };
  const outcomes = [];
  for (const t of targets) {
    if (t.call) { try { t.call({ clusterId: 'c', credentials: { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 's' } }); outcomes.push(t.name); } catch (e) { outcomes.push(t.name + ' threw ' + e.message); } continue; }
    const s = t.instance(ctx);
    if (t.cached) {
      const c = t.cached(ctx);
      for (let i = 0; i < 3; i++) await c.strategy.getCredential(...c.args);
      outcomes.push(t.name);
    }
    if (s.validateCluster) { s.validateCluster({}); s.presentAuthMetadata({}); }
  }
  const u = upstreams.find((x) => x.name === process.env.EXIT_UPSTREAM);
  const uctx = { endpoint: process.env.EXIT_ENDPOINT, caData: process.env.EXIT_CA_DATA, timeoutMs: 5000 };
  await u.call(u.make(uctx), uctx, 1);
  outcomes.push(u.name);
  fs.rmSync(tmp, { recursive: true, force: true });
  process.stdout.write(JSON.stringify(outcomes) + '\\n');
})().catch((e) => { console.error(e.stack); process.exit(1); });
`;

describe('every export and every upstream (reliability/targets.js, upstreams.js)', () => {
  let concierge;
  beforeAll(async () => {
    concierge = await new KubeApiStandIn({ concierge: { users: { 'exit-LEAKCANARY-token': 'exit-user' }, reuseCertificates: true } }).start();
  });
  afterAll(() => concierge.stop());

  it.each(upstreams.map((u) => [u.name, u]))('a process that made calls through every strategy and %s exits within 1 s of its last call', async (name, upstream) => {
    const server = await new FaultServer(upstream).start();
    try {
      const endpoint = upstream.scheme === 'https' ? server.httpsUrl : server.httpUrl;
      const env = { ...process.env };
      for (const k of Object.keys(env)) if (k.startsWith('AWS_')) delete env[k];
      Object.assign(env, {
        AWS_EC2_METADATA_DISABLED: 'true',
        AWS_CONFIG_FILE: '/nonexistent/config',
        AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/credentials',
        EXIT_CONCIERGE: JSON.stringify({ url: concierge.url, caData: concierge.caData, token: 'exit-LEAKCANARY-token' }),
        EXIT_UPSTREAM: name,
        EXIT_ENDPOINT: endpoint,
        EXIT_CA_DATA: server.caData,
      });
      for (const [k, v] of Object.entries(upstream.env ? upstream.env(endpoint) : {})) {
        if (v === null) delete env[k];
        else env[k] = v;
      }
      if (env.AWS_EC2_METADATA_SERVICE_ENDPOINT) delete env.AWS_EC2_METADATA_DISABLED;
      const child = spawn(process.execPath, ['-e', tableScript], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      let lastCallAt;
      child.stdout.on('data', (d) => {
        out += d;
        if (out.includes('\n')) lastCallAt ??= Date.now();
      });
      child.stderr.on('data', (d) => (err += d));
      const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const code = await new Promise((resolve) => child.on('exit', (c, signal) => resolve(signal ?? c)));
      const exitedAfter = Date.now() - lastCallAt;
      clearTimeout(killer);
      expect({ code, err }).toEqual({ code: 0, err: '' });
      expect(JSON.parse(out)).toEqual(expect.arrayContaining(['AksStrategy', 'PinnipedStrategy', 'AwsIamStrategy', 'presignEksToken', name]));
      expect(exitedAfter).toBeLessThan(1000);
    } finally {
      await server.stop();
    }
  }, 60_000);
});
