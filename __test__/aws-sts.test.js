'use strict';
// AwsIamStrategy against STS for real: moto's server behind a counting, fault-injecting
// loopback proxy (helpers/sts.js), set as the STS endpoint with AWS_ENDPOINT_URL_STS. Every
// token is checked by the independent verifier with the secrets moto handed out.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { AwsIamStrategy } = require('..');
const { StsStandIn } = require('./helpers/sts');
const { verifyEksToken } = require('./helpers/eks-verify');
const { setEnv, replaceAwsEnv } = require('./helpers/real-env');

const MAIN = { accessKeyId: 'AKIAMAINEXAMPLE00001', secretAccessKey: 'mainSecretKey/LEAKCANARY+0001' };
const OTHER = { accessKeyId: 'AKIAOTHEREXAMPLE0002', secretAccessKey: 'otherSecretKey/LEAKCANARY+0002' };
const ROLE = 'arn:aws:iam::123456789012:role/eks-reader';

let sts;
let saved;
let tmp;

beforeAll(async () => {
  saved = await replaceAwsEnv({});
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'aws-sts-'));
  sts = await new StsStandIn().start();
}, 300000);

afterAll(async () => {
  await replaceAwsEnv(saved);
  await sts?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

beforeEach(async () => {
  await replaceAwsEnv({
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: path.join(tmp, 'absent-config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(tmp, 'absent-credentials'),
    AWS_ENDPOINT_URL_STS: sts.url,
  });
  sts.reset();
});

const cluster = (name, authMetadata = {}) => ({ name, url: 'https://127.0.0.1:6443', authMetadata });
const secretFor = (k) => ({ [MAIN.accessKeyId]: MAIN.secretAccessKey, [OTHER.accessKeyId]: OTHER.secretAccessKey })[k] ?? sts.secrets.get(k);
const verify = (token, clusterId) => verifyEksToken(token, { clusterId, secretFor });
const withMain = (extra = {}) => ({ config: { aws: { mainAccount: MAIN, ...extra } } });
const assumed = (role, externalId) => cluster('eks', {
  'kubernetes.io/aws-assume-role': role,
  ...(externalId ? { 'kubernetes.io/aws-external-id': externalId } : {}),
});

describe('assume-role annotation', () => {
  it('returns a presigned url for AWS credentials with assumed role, signed by the role', async () => {
    const s = new AwsIamStrategy(withMain());
    const { token } = await s.getCredential(assumed(ROLE), {});
    const v = verify(token, 'eks');
    expect(v.accessKeyId).not.toBe(MAIN.accessKeyId);
    expect(sts.secrets.has(v.accessKeyId)).toBe(true);
    expect(v.sessionToken).toBeTruthy();
    // The role is in the account found by GetCallerIdentity (moto: 123456789012), so the
    // main account is the master; no ExternalId is sent without the annotation.
    expect(sts.calls.map((c) => c.action)).toEqual(['GetCallerIdentity', 'AssumeRole']);
    const call = sts.calls[1];
    expect(call.params.RoleArn).toBe(ROLE);
    expect(call.params.ExternalId).toBeUndefined();
    expect(call.signedBy).toBe(MAIN.accessKeyId);
    expect(call.region).toBe('us-east-1');
  });

  it('returns a presigned url for AWS credentials and passes the external id', async () => {
    const s = new AwsIamStrategy(withMain());
    const { token } = await s.getCredential(assumed(ROLE, 'external-id'), {});
    expect(verify(token, 'eks')).toBeTruthy();
    const call = sts.calls.find((c) => c.action === 'AssumeRole');
    expect(call.params.ExternalId).toBe('external-id');
  });

  it('1000 concurrent calls make exactly one AssumeRole, and later calls none', async () => {
    const s = new AwsIamStrategy(withMain());
    const results = await Promise.all(Array.from({ length: 1000 }, () => s.getCredential(assumed(ROLE), {})));
    expect(sts.count('AssumeRole')).toBe(1);
    expect(new Set(results.map((r) => r.token)).size).toBe(1);
    verify(results[0].token, 'eks');
    await s.getCredential(assumed(ROLE), {});
    expect(sts.count('AssumeRole')).toBe(1);
  });

  it('with the token cache off, credentials are still cached: one AssumeRole for many tokens', async () => {
    const s = new AwsIamStrategy({ ...withMain(), tokenCacheSeconds: 0 });
    for (const name of ['a', 'b', 'c']) verify((await s.getCredential({ ...assumed(ROLE), name }, {})).token, name);
    await Promise.all(Array.from({ length: 200 }, () => s.getCredential(assumed(ROLE), {})));
    expect(sts.count('AssumeRole')).toBe(1);
  });

  it('different external ids are different credentials', async () => {
    const s = new AwsIamStrategy(withMain());
    await s.getCredential(assumed(ROLE, 'one'), {});
    await s.getCredential(assumed(ROLE, 'two'), {});
    await s.getCredential(assumed(ROLE, 'one'), {});
    expect(sts.calls.filter((c) => c.action === 'AssumeRole').map((c) => c.params.ExternalId)).toEqual(['one', 'two']);
  });

  it('with cache: false it calls AssumeRole on every getCredential, as Backstage does', async () => {
    const s = new AwsIamStrategy({ ...withMain(), cache: false });
    for (let i = 0; i < 3; i++) verify((await s.getCredential(assumed(ROLE), {})).token, 'eks');
    expect(sts.count('AssumeRole')).toBe(3);
  });

  it('assumes the role in AWS_REGION', async () => {
    await setEnv({ AWS_REGION: 'eu-central-1' });
    const s = new AwsIamStrategy(withMain());
    const v = verify((await s.getCredential(assumed(ROLE), {})).token, 'eks');
    expect(v.region).toBe('eu-central-1');
    expect(sts.calls.find((c) => c.action === 'AssumeRole').region).toBe('eu-central-1');
  });
});

describe('aws integration config (DefaultAwsCredentialsManager semantics)', () => {
  it('discovers the main account once with GetCallerIdentity and falls back to it for unknown accounts', async () => {
    const s = new AwsIamStrategy(withMain());
    await s.getCredential(assumed('arn:aws:iam::999999999999:role/elsewhere'), {});
    await s.getCredential(assumed('arn:aws:iam::888888888888:role/elsewhere'), {});
    expect(sts.count('GetCallerIdentity')).toBe(1);
    const roles = sts.calls.filter((c) => c.action === 'AssumeRole');
    expect(roles.map((c) => [c.params.RoleArn, c.signedBy])).toEqual([
      ['arn:aws:iam::999999999999:role/elsewhere', MAIN.accessKeyId],
      ['arn:aws:iam::888888888888:role/elsewhere', MAIN.accessKeyId],
    ]);
  });

  it('chains roles: accounts[].roleName first (session backstage), then the annotation role', async () => {
    const s = new AwsIamStrategy(withMain({ accounts: [{ accountId: '111111111111', roleName: 'hub', externalId: 'hub-ext' }] }));
    const target = 'arn:aws:iam::111111111111:role/eks-admin';
    const v = verify((await s.getCredential(assumed(target), {})).token, 'eks');
    const [hub, leaf] = sts.calls.filter((c) => c.action === 'AssumeRole');
    expect(hub.params).toMatchObject({ RoleArn: 'arn:aws:iam::111111111111:role/hub', RoleSessionName: 'backstage', ExternalId: 'hub-ext' });
    expect(hub.signedBy).toBe(MAIN.accessKeyId);
    expect(leaf.params.RoleArn).toBe(target);
    // The annotation role is assumed with the hub role's credentials.
    expect(leaf.signedBy).not.toBe(MAIN.accessKeyId);
    expect(sts.secrets.has(leaf.signedBy)).toBe(true);
    expect(v.accessKeyId).not.toBe(leaf.signedBy);
    expect(sts.count('GetCallerIdentity')).toBe(0);
  });

  it('uses an account\'s static keys as the master of the annotation role', async () => {
    const s = new AwsIamStrategy(withMain({ accounts: [{ accountId: '222222222222', ...OTHER }] }));
    await s.getCredential(assumed('arn:aws:iam::222222222222:role/r'), {});
    expect(sts.calls.map((c) => [c.action, c.signedBy])).toEqual([['AssumeRole', OTHER.accessKeyId]]);
  });

  it('synthesises an account from accountDefaults.roleName (with partition and region)', async () => {
    const s = new AwsIamStrategy(withMain({ accountDefaults: { roleName: 'default-role', region: 'eu-west-1' } }));
    await s.getCredential(assumed('arn:aws:iam::333333333333:role/leaf'), {});
    const [first, second] = sts.calls;
    expect(first.params.RoleArn).toBe('arn:aws:iam::333333333333:role/default-role');
    expect(first.region).toBe('eu-west-1');
    expect(second.params.RoleArn).toBe('arn:aws:iam::333333333333:role/leaf');
  });

  it('kubernetes.io/aws-account-id: a configured account\'s credentials, without assuming a role', async () => {
    const s = new AwsIamStrategy(withMain({ accounts: [{ accountId: '222222222222', ...OTHER }] }));
    const v = verify((await s.getCredential(cluster('eks', { 'kubernetes.io/aws-account-id': '222222222222' }), {})).token, 'eks');
    expect(v.accessKeyId).toBe(OTHER.accessKeyId);
    expect(sts.count()).toBe(0);
  });

  it('kubernetes.io/aws-account-id: an unknown account rejects, with no fallback', async () => {
    const s = new AwsIamStrategy(withMain());
    await expect(s.getCredential(cluster('eks', { 'kubernetes.io/aws-account-id': '999999999999' }), {})).rejects.toThrow(
      new Error('There is no AWS integration that matches 999999999999. Please add a configuration for this AWS account.'),
    );
    // The main account's own id works.
    const v = verify((await s.getCredential(cluster('eks', { 'kubernetes.io/aws-account-id': '123456789012' }), {})).token, 'eks');
    expect(v.accessKeyId).toBe(MAIN.accessKeyId);
    expect(sts.count('GetCallerIdentity')).toBe(1);
  });

  it('AssumeRoleWithWebIdentity from accounts[].webIdentityTokenFile', async () => {
    const tokenFile = path.join(tmp, 'web-identity-token');
    fs.writeFileSync(tokenFile, 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJiYWNrc3RhZ2UifQ.c2ln\n');
    const s = new AwsIamStrategy(withMain({ accounts: [{ accountId: '444444444444', roleName: 'irsa', webIdentityTokenFile: tokenFile }] }));
    const v = verify((await s.getCredential(cluster('eks', { 'kubernetes.io/aws-account-id': '444444444444' }), {})).token, 'eks');
    const call = sts.calls.find((c) => c.action === 'AssumeRoleWithWebIdentity');
    expect(call.params).toMatchObject({
      RoleArn: 'arn:aws:iam::444444444444:role/irsa',
      RoleSessionName: 'backstage',
      WebIdentityToken: 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJiYWNrc3RhZ2UifQ.c2ln',
    });
    expect(sts.secrets.has(v.accessKeyId)).toBe(true);
  });

  it('the default chain: web identity from AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN', async () => {
    const tokenFile = path.join(tmp, 'irsa-token');
    fs.writeFileSync(tokenFile, 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJpcnNhIn0.c2ln');
    await setEnv({ AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile });
    await setEnv({ AWS_ROLE_ARN: 'arn:aws:iam::123456789012:role/irsa-role' });
    await setEnv({ AWS_ROLE_SESSION_NAME: 'irsa-session' });
    const s = new AwsIamStrategy();
    const v = verify((await s.getCredential(cluster('eks'), {})).token, 'eks');
    expect(sts.calls.map((c) => c.action)).toEqual(['AssumeRoleWithWebIdentity']);
    expect(sts.calls[0].params.RoleArn).toBe('arn:aws:iam::123456789012:role/irsa-role');
    expect(sts.secrets.has(v.accessKeyId)).toBe(true);
  });
});

describe('STS faults', () => {
  const noSecret = (message) => {
    expect(message).not.toContain(MAIN.secretAccessKey);
    for (const secret of sts.secrets.values()) expect(message).not.toContain(secret);
  };

  it.each([
    ['500', /^aws: STS AssumeRole arn:aws:iam::123456789012:role\/eks-reader: InternalFailure: The request processing has failed \(HTTP 500\)$/],
    ['throttle', /^aws: STS AssumeRole arn:aws:iam::123456789012:role\/eks-reader: Throttling: Rate exceeded \(HTTP 400\)$/],
    ['malformed', /^aws: STS AssumeRole arn:aws:iam::123456789012:role\/eks-reader: (the response has no usable Credentials|unreadable response)/],
    ['garbage', /^aws: STS AssumeRole arn:aws:iam::123456789012:role\/eks-reader: unreadable response, no AWS error code \(HTTP 200\)$/],
  ])('STS answering %s: rejects naming STS and the error code, then recovers', async (fault, message) => {
    // A known main account, so only AssumeRole meets the fault.
    const s = new AwsIamStrategy({ ...withMain({ accounts: [{ accountId: '123456789012', ...MAIN }] }), timeoutMs: 5000 });
    sts.fault = fault;
    const started = Date.now();
    const err = await s.getCredential(assumed(ROLE), {}).then(() => null, (e) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toMatch(message);
    expect(Date.now() - started).toBeLessThan(5000);
    noSecret(err.message);
    sts.fault = null;
    verify((await s.getCredential(assumed(ROLE), {})).token, 'eks');
  });

  it('STS not answering at all: rejects at timeoutMs, then recovers', async () => {
    // The budget must also cover moto's real answer on a busy CI machine in the recovery call.
    const s = new AwsIamStrategy({ ...withMain({ accounts: [{ accountId: '123456789012', ...MAIN }] }), timeoutMs: 2000 });
    sts.fault = 'hang';
    const started = Date.now();
    const err = await s.getCredential(assumed(ROLE), {}).then(() => null, (e) => e);
    const elapsed = Date.now() - started;
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toMatch(/STS|timed out|did not complete within 2000 ms/);
    expect(err.message).toMatch(/^aws: /);
    expect(elapsed).toBeGreaterThanOrEqual(1900);
    expect(elapsed).toBeLessThan(5000);
    sts.fault = null;
    verify((await s.getCredential(assumed(ROLE), {})).token, 'eks');
  });
});
