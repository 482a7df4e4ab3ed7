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
