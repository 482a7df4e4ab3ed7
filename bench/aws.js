'use strict';
// `npm run bench` (AWS part): Backstage 0.21.11's JS AwsIamStrategy beside ours on the same
// inputs, in one Node process. STS is moto behind the counting proxy of the tests
// (__test__/helpers/sts.js), so AssumeRole calls are counted, never sent to AWS.
// Writes bench/aws-results.json and prints a Markdown table.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { ConfigReader } = require('@backstage/config');
const backstage = require('@backstage/plugin-kubernetes-backend');
const native = require('..');
const { StsStandIn } = require('../__test__/helpers/sts');

const SMOKE = process.argv.includes('--smoke');
const MAIN = { accessKeyId: 'AKIABENCHEXAMPLE0001', secretAccessKey: 'benchSecret/EXAMPLE+key' };
const ROLE = 'arn:aws:iam::123456789012:role/bench';

async function callsPerSecond(fn, seconds) {
  for (let i = 0; i < 50; i++) await fn();
  const deadline = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  const t0 = process.hrtime.bigint();
  let n = 0;
  while (process.hrtime.bigint() < deadline) {
    for (let i = 0; i < 20; i++) await fn();
    n += 20;
  }
  return n / (Number(process.hrtime.bigint() - t0) / 1e9);
}

async function main() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'aws-bench-'));
  for (const k of Object.keys(process.env)) if (k.startsWith('AWS_')) delete process.env[k];
  Object.assign(process.env, {
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: path.join(tmp, 'absent'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(tmp, 'absent'),
  });
  const sts = await new StsStandIn().start();
  process.env.AWS_ENDPOINT_URL_STS = sts.url;
  const aws = { mainAccount: MAIN };
  const seconds = SMOKE ? 0.3 : 3;
  const cd = { name: 'eks', url: 'https://127.0.0.1:6443', authMetadata: {} };
  const roleCd = { ...cd, authMetadata: { 'kubernetes.io/aws-assume-role': ROLE } };
  const theirs = new backstage.AwsIamStrategy({ config: new ConfigReader({ aws }) });
  const rows = [];
  try {
    for (const [name, ours, cluster] of [
      ['static credentials, token cache off', new native.AwsIamStrategy({ config: { aws }, tokenCacheSeconds: 0 }), cd],
      ['static credentials, token cache on (default)', new native.AwsIamStrategy({ config: { aws } }), cd],
      ['assume-role annotation (STS AssumeRole)', new native.AwsIamStrategy({ config: { aws } }), roleCd],
    ]) {
      const backstagePerS = await callsPerSecond(() => theirs.getCredential(cluster, {}), cluster === roleCd ? Math.min(seconds, 2) : seconds);
      const oursPerS = await callsPerSecond(() => ours.getCredential(cluster, {}), seconds);
      rows.push({ name, backstagePerS, oursPerS, speedup: oursPerS / backstagePerS });
    }
    // 1000 concurrent calls for one role, each strategy fresh (nothing cached yet).
    const concurrent = {};
    for (const [who, make] of [
      ['backstage', () => new backstage.AwsIamStrategy({ config: new ConfigReader({ aws }) })],
      ['ours', () => new native.AwsIamStrategy({ config: { aws } })],
    ]) {
      const s = make();
      await s.getCredential(cd, {});
      sts.reset();
      await Promise.all(Array.from({ length: 1000 }, () => s.getCredential(roleCd, {})));
      concurrent[who] = sts.count('AssumeRole');
    }
    const result = {
      date: new Date().toISOString(),
      machine: `${os.cpus().length} x ${os.cpus()[0].model}, Node ${process.version}`,
      secondsPerCase: seconds,
      rows,
      assumeRoleCallsFor1000Concurrent: concurrent,
    };
    console.log(`\nAwsIamStrategy, calls/s awaited one after another (${result.machine})\n`);
    console.log('| case | Backstage 0.21.11 (calls/s) | ours (calls/s) | ours/Backstage |');
    console.log('|---|---:|---:|---:|');
    for (const r of rows) {
      console.log(`| ${r.name} | ${Math.round(r.backstagePerS)} | ${Math.round(r.oursPerS)} | ${r.speedup.toFixed(1)}x |`);
    }
    console.log(`\n1000 concurrent getCredential calls with one assume-role annotation: AssumeRole calls: Backstage ${concurrent.backstage}, ours ${concurrent.ours}`);
    if (!SMOKE) fs.writeFileSync(path.join(__dirname, 'aws-results.json'), JSON.stringify(result, null, 2) + '\n');
  } finally {
    await sts.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
