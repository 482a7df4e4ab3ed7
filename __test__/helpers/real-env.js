'use strict';
// Jest gives each test file a copy of `process.env`: setting it does not reach the process
// environment that native code (and the AWS SDK inside it) reads. A worker thread started
// with `env: SHARE_ENV` writes the real environment; these helpers use one per change, and
// mirror the change into the test file's `process.env` so JS code sees the same values.

const { Worker, SHARE_ENV } = require('node:worker_threads');

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const before = {};
for (const k of Object.keys(process.env)) if (k.startsWith(workerData.prefix)) before[k] = process.env[k];
if (workerData.clearPrefix) for (const k of Object.keys(before)) delete process.env[k];
for (const [k, v] of Object.entries(workerData.vars)) {
  if (v === null) delete process.env[k];
  else process.env[k] = v;
}
parentPort.postMessage(before);
`;

function run(vars, { clearPrefix = false, prefix = 'AWS_' } = {}) {
  return new Promise((resolve, reject) => {
    const w = new Worker(WORKER, { eval: true, env: SHARE_ENV, workerData: { vars, clearPrefix, prefix } });
    w.once('message', resolve);
    w.once('error', reject);
  }).then((before) => {
    if (clearPrefix) for (const k of Object.keys(process.env)) if (k.startsWith(prefix)) delete process.env[k];
    for (const [k, v] of Object.entries(vars)) {
      if (v === null) delete process.env[k];
      else process.env[k] = v;
    }
    return before;
  });
}

/** Sets (string) or removes (null) variables in the real environment and in `process.env`. */
const setEnv = (vars) => run(vars);

/** Removes every `AWS_*` variable, then sets `vars`. Resolves to the `AWS_*` values before. */
const replaceAwsEnv = (vars = {}) => run(vars, { clearPrefix: true });

module.exports = { setEnv, replaceAwsEnv };
