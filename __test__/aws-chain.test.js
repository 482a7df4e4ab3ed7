'use strict';
// The AWS credential chain without STS: IMDSv2 and ECS container credentials from loopback
// stand-ins, and profiles (static keys, credential_process) from shared config files.

const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { AwsIamStrategy } = require('..');
const { verifyEksToken } = require('./helpers/eks-verify');
const { setEnv, replaceAwsEnv } = require('./helpers/real-env');

const IMDS_CREDS = { AccessKeyId: 'ASIAIMDSEXAMPLE00001', SecretAccessKey: 'imdsSecret/LEAKCANARY', Token: 'imds-session-token-LEAKCANARY' };
const ECS_CREDS = { AccessKeyId: 'ASIAECSEXAMPLE000001', SecretAccessKey: 'ecsSecret/LEAKCANARY', Token: 'ecs-session-token-LEAKCANARY' };
const PROFILE = { accessKeyId: 'AKIAPROFILEEXAMPLE01', secretAccessKey: 'profileSecret/LEAKCANARY' };
const PROCESS = { accessKeyId: 'ASIAPROCESSEXAMPLE01', secretAccessKey: 'processSecret/LEAKCANARY', sessionToken: 'process-token-LEAKCANARY' };
const SECRETS = {
  [IMDS_CREDS.AccessKeyId]: IMDS_CREDS.SecretAccessKey,
  [ECS_CREDS.AccessKeyId]: ECS_CREDS.SecretAccessKey,
  [PROFILE.accessKeyId]: PROFILE.secretAccessKey,
  [PROCESS.accessKeyId]: PROCESS.secretAccessKey,
};
const verify = (token) => verifyEksToken(token, { clusterId: 'eks', secretFor: (k) => SECRETS[k] });
const cluster = { name: 'eks', url: 'https://127.0.0.1:6443', authMetadata: {} };

let saved;
let tmp;
let server;
let base;
const requests = [];

beforeAll(async () => {
  saved = await replaceAwsEnv({});
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'aws-chain-'));
  // One loopback server plays IMDSv2 (/latest/...) and the ECS credentials endpoint (/ecs).
  server = http.createServer((req, res) => {
    requests.push({ method: req.method, url: req.url, headers: req.headers });
    const expiration = new Date(Date.now() + 3600 * 1000).toISOString();
    const json = (status, body) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'PUT' && req.url === '/latest/api/token') {
      if (!req.headers['x-aws-ec2-metadata-token-ttl-seconds']) return json(400, {});
      res.writeHead(200, { 'x-aws-ec2-metadata-token-ttl-seconds': '21600' });
      return res.end('imds-session');
    }
    if (req.url.startsWith('/latest/')) {
      if (req.headers['x-aws-ec2-metadata-token'] !== 'imds-session') return json(401, {});
      if (req.url === '/latest/meta-data/iam/security-credentials/') {
        res.writeHead(200);
        return res.end('imds-role');
      }
      if (req.url === '/latest/meta-data/iam/security-credentials/imds-role') {
        return json(200, { Code: 'Success', Type: 'AWS-HMAC', LastUpdated: new Date().toISOString(), ...IMDS_CREDS, Expiration: expiration });
      }
      res.writeHead(404);
      return res.end();
    }
    if (req.url === '/ecs') {
      if (req.headers.authorization !== 'ecs-auth-token') return json(401, {});
      return json(200, { ...ECS_CREDS, Expiration: expiration });
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${server.address().port}`;
});

afterAll(async () => {
  await replaceAwsEnv(saved);
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  fs.rmSync(tmp, { recursive: true, force: true });
});

beforeEach(async () => {
  requests.length = 0;
  await replaceAwsEnv({
    AWS_CONFIG_FILE: path.join(tmp, 'absent-config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(tmp, 'absent-credentials'),
    // Never the real metadata address; tests that want IMDS point it at the stand-in.
    AWS_EC2_METADATA_DISABLED: 'true',
  });
});

it('IMDSv2: a session token first, then the role credentials; cached afterwards', async () => {
  await setEnv({ AWS_EC2_METADATA_DISABLED: null, AWS_EC2_METADATA_SERVICE_ENDPOINT: base });
  const s = new AwsIamStrategy();
  const v = verify((await s.getCredential(cluster, {})).token);
  expect(v.accessKeyId).toBe(IMDS_CREDS.AccessKeyId);
  expect(v.sessionToken).toBe(IMDS_CREDS.Token);
  expect(requests[0]).toMatchObject({ method: 'PUT', url: '/latest/api/token' });
  expect(requests.some((r) => r.url === '/latest/meta-data/iam/security-credentials/imds-role')).toBe(true);
  const seen = requests.length;
  await Promise.all(Array.from({ length: 50 }, (_, i) => s.getCredential({ ...cluster, name: `c${i}` }, {})));
  expect(requests.length).toBe(seen);
});

it('ECS/container credentials from AWS_CONTAINER_CREDENTIALS_FULL_URI with its authorization token', async () => {
  await setEnv({ AWS_CONTAINER_CREDENTIALS_FULL_URI: `${base}/ecs` });
  await setEnv({ AWS_CONTAINER_AUTHORIZATION_TOKEN: 'ecs-auth-token' });
  const s = new AwsIamStrategy();
  const v = verify((await s.getCredential(cluster, {})).token);
  expect(v.accessKeyId).toBe(ECS_CREDS.AccessKeyId);
  expect(v.sessionToken).toBe(ECS_CREDS.Token);
  expect(requests.map((r) => r.url)).toEqual(['/ecs']);
});

it('mainAccount.profile: static keys from the shared credentials file', async () => {
  const file = path.join(tmp, 'credentials');
  fs.writeFileSync(file, `[team]\naws_access_key_id = ${PROFILE.accessKeyId}\naws_secret_access_key = ${PROFILE.secretAccessKey}\n`);
  await setEnv({ AWS_SHARED_CREDENTIALS_FILE: file });
  const s = new AwsIamStrategy({ config: { aws: { mainAccount: { profile: 'team' } } } });
  expect(verify((await s.getCredential(cluster, {})).token).accessKeyId).toBe(PROFILE.accessKeyId);
});

it('mainAccount.profile: credential_process', async () => {
  const script = path.join(tmp, 'creds.js');
  fs.writeFileSync(script, `console.log(JSON.stringify({ Version: 1, AccessKeyId: '${PROCESS.accessKeyId}', SecretAccessKey: '${PROCESS.secretAccessKey}', SessionToken: '${PROCESS.sessionToken}' }))`);
  const config = path.join(tmp, 'config');
  fs.writeFileSync(config, `[profile proc]\ncredential_process = ${process.execPath} ${script}\n`);
  await setEnv({ AWS_CONFIG_FILE: config });
  const s = new AwsIamStrategy({ config: { aws: { mainAccount: { profile: 'proc' } } } });
  const v = verify((await s.getCredential(cluster, {})).token);
  expect(v.accessKeyId).toBe(PROCESS.accessKeyId);
  expect(v.sessionToken).toBe(PROCESS.sessionToken);
});

it('environment credentials come first in the default chain', async () => {
  await setEnv({ AWS_ACCESS_KEY_ID: PROFILE.accessKeyId });
  await setEnv({ AWS_SECRET_ACCESS_KEY: PROFILE.secretAccessKey });
  await setEnv({ AWS_CONTAINER_CREDENTIALS_FULL_URI: `${base}/ecs` });
  await setEnv({ AWS_CONTAINER_AUTHORIZATION_TOKEN: 'ecs-auth-token' });
  const s = new AwsIamStrategy();
  expect(verify((await s.getCredential(cluster, {})).token).accessKeyId).toBe(PROFILE.accessKeyId);
  expect(requests).toEqual([]);
});
