'use strict';
// Runs fuzz.run.js in a child Jest process: a crash (abort, segfault) of the process under
// fuzz shows as a crash here, not as a lost test worker. Inputs in all: 100,000 with
// RELIABILITY_FULL=1, a few thousand otherwise.

const { spawn } = require('node:child_process');
const path = require('node:path');
const { targets } = require('./targets');
const { FULL, observe, leaks } = require('./record');

const ROOT = path.join(__dirname, '..', '..');
const TOTAL = Number(process.env.FUZZ_TOTAL ?? (FULL ? 100_000 : 3_500));
const UNITS = targets.reduce((n, t) => n + (t.call ? 1 : 1 + Object.keys(t.methods).length), 0);

it(`${TOTAL} generated inputs across every constructor and method: no crash, only field-naming Errors, nothing pending`, async () => {
  const env = { ...process.env, FUZZ_PER_UNIT: String(Math.ceil(TOTAL / UNITS)), FUZZ_SHARD: 'all' };
  // Nothing the fuzzer makes may reach a real network: STS and the metadata services point
  // at a closed loopback port, shared files and environment credentials are absent.
  for (const k of Object.keys(env)) if (k.startsWith('AWS_')) delete env[k];
  Object.assign(env, {
    AWS_ENDPOINT_URL_STS: 'http://127.0.0.1:1',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: '/nonexistent/aws-config',
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws-credentials',
  });
  const child = spawn(
    process.execPath,
    ['--experimental-vm-modules', path.join(ROOT, 'node_modules/jest/bin/jest.js'), '--ci', '--runInBand', '--rootDir', ROOT, '--testPathIgnorePatterns', '/node_modules/', '--testMatch', '**/__test__/reliability/fuzz.run.js'],
    { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const { code, signal } = await new Promise((resolve) => child.on('exit', (c, s) => resolve({ code: c, signal: s })));
  observe('fuzz child output', out);
  if (code !== 0) console.log(out.slice(-20_000));
  expect({ code, signal }).toEqual({ code: 0, signal: null });
  expect(out).toMatch(/Tests:\s+\d+ passed, \d+ total/);
  expect(leaks()).toEqual([]);
}, 1_800_000);
