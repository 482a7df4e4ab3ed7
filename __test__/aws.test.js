'use strict';
// AwsIamStrategy and presignEksToken: the golden vectors of contract 5.3, tokens checked by an
// independent verifier (helpers/eks-verify.js), Backstage's own JS strategy side by side, and
// the credential chain with static keys. STS-backed behaviour is in aws-sts.test.js.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { ConfigReader } = require('@backstage/config');
const { AwsIamStrategy: BackstageAwsIamStrategy } = require('@backstage/plugin-kubernetes-backend');
const { AwsIamStrategy, presignEksToken, strategyClasses, notYetNative } = require('..');
const { verifyEksToken } = require('./helpers/eks-verify');
const { setEnv, replaceAwsEnv } = require('./helpers/real-env');

const T = Date.UTC(2024, 0, 2, 3, 4, 5);
const EXAMPLE = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const ENV_CREDS = { accessKeyId: 'ASIAENVKEY', secretAccessKey: 'envSecret', sessionToken: 'env/session+token=' };
const SECRETS = { AKIDEXAMPLE: EXAMPLE.secretAccessKey, ASIAENVKEY: 'envSecret' };

const urlOf = (token) => Buffer.from(token.slice('k8s-aws-v1.'.length), 'base64url').toString('utf8');
const sigOf = (token) => /X-Amz-Signature=([0-9a-f]{64})$/.exec(urlOf(token))[1];
const cluster = (name, authMetadata = {}) => ({ name, url: 'https://127.0.0.1:6443', authMetadata });

let saved;
let tmp;
beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'aws-'));
  saved = await replaceAwsEnv({});
});
afterAll(async () => {
  await replaceAwsEnv(saved);
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** No AWS settings but `vars` (in the real environment, see helpers/real-env.js); never a
 * real AWS host, file or metadata service. */
function awsEnv(vars = {}) {
  return replaceAwsEnv({
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: path.join(tmp, 'absent-config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(tmp, 'absent-credentials'),
    ...vars,
  });
}

function envCredentials(c) {
  return { AWS_ACCESS_KEY_ID: c.accessKeyId, AWS_SECRET_ACCESS_KEY: c.secretAccessKey, ...(c.sessionToken ? { AWS_SESSION_TOKEN: c.sessionToken } : {}) };
}

describe('presignEksToken: golden vectors (contract 5.3)', () => {
  beforeEach(() => awsEnv());

  it('name test-cluster, no annotations, region unset: the full token', () => {
    const token = presignEksToken({ clusterId: 'test-cluster', credentials: EXAMPLE, signingTime: new Date(T) });
    expect(token).toBe(
      'k8s-aws-v1.aHR0cHM6Ly9zdHMudXMtZWFzdC0xLmFtYXpvbmF3cy5jb20vP0FjdGlvbj1HZXRDYWxsZXJJZGVudGl0eSZWZXJzaW9uPTIwMTEtMDYtMTUmWC1BbXotQWxnb3JpdGhtPUFXUzQtSE1BQy1TSEEyNTYmWC1BbXotQ3JlZGVudGlhbD1BS0lERVhBTVBMRSUyRjIwMjQwMTAyJTJGdXMtZWFzdC0xJTJGc3RzJTJGYXdzNF9yZXF1ZXN0JlgtQW16LURhdGU9MjAyNDAxMDJUMDMwNDA1WiZYLUFtei1FeHBpcmVzPTAmWC1BbXotU2lnbmVkSGVhZGVycz1ob3N0JTNCeC1rOHMtYXdzLWlkJlgtQW16LVNpZ25hdHVyZT0wOGMxNjJkOTg1YTdmNDc3ZmUzMWQ3MWJiOWFjM2QyM2ExY2I3ZTVhZWMyYjU0M2JkMDAwNGM5NDQ4ZjliZjVm',
    );
    expect(urlOf(token)).toBe(
      'https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20240102%2Fus-east-1%2Fsts%2Faws4_request&X-Amz-Date=20240102T030405Z&X-Amz-Expires=0&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id&X-Amz-Signature=08c162d985a7f477fe31d71bb9ac3d23a1cb7e5aec2b543bd0004c9448f9bf5f',
    );
    // A number is the same signing time as the Date.
    expect(presignEksToken({ clusterId: 'test-cluster', credentials: EXAMPLE, signingTime: T })).toBe(token);
  });

  it('names signingTime when it cannot be inspected (a proxy whose traps throw)', () => {
    const trap = () => {
      throw new Error('proxy trap');
    };
    const signingTime = new Proxy({}, { get: trap, getOwnPropertyDescriptor: trap, has: trap, ownKeys: trap });
    expect(() => presignEksToken({ clusterId: 'c', credentials: EXAMPLE, signingTime })).toThrow(
      new TypeError('options.signingTime must be readable'),
    );
  });

  it('x-k8s-aws-id: other-name', () => {
    const token = presignEksToken({ clusterId: 'other-name', credentials: EXAMPLE, signingTime: T });
    expect(sigOf(token)).toBe('311847e75bf5bdbc6515b87477fc6a27d4ad94f1d2874de1f43b8cff731f1193');
  });

  it('AWS_REGION=eu-west-1 (from the environment, and as the region option)', async () => {
    const expected = 'da41c13f4ee6cc56229bc1a6d5c7f3f425d57803f3257166411bf4f750b45962';
    const byOption = presignEksToken({ clusterId: 'test-cluster', region: 'eu-west-1', credentials: EXAMPLE, signingTime: T });
    expect(sigOf(byOption)).toBe(expected);
    expect(urlOf(byOption)).toMatch(/^https:\/\/sts\.eu-west-1\.amazonaws\.com\/\?.*X-Amz-Credential=AKIDEXAMPLE%2F20240102%2Feu-west-1%2Fsts%2Faws4_request&/);
    await setEnv({ AWS_REGION: 'eu-west-1' });
    expect(presignEksToken({ clusterId: 'test-cluster', credentials: EXAMPLE, signingTime: T })).toBe(byOption);
  });

  it('name a b/c+d=é', () => {
    const token = presignEksToken({ clusterId: 'a b/c+d=é', credentials: EXAMPLE, signingTime: T });
    expect(sigOf(token)).toBe('4735db63b135c7ced204d244d9a85bebe871b939631b895ec521c7add178a60f');
  });

  it('session token ASIAENVKEY / env/session+token=, name c1', () => {
    const token = presignEksToken({ clusterId: 'c1', credentials: ENV_CREDS, signingTime: T });
    const url = urlOf(token);
    expect(url.startsWith(
      'https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Security-Token=env%2Fsession%2Btoken%3D&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIAENVKEY%2F20240102%2Fus-east-1%2Fsts%2Faws4_request&',
    )).toBe(true);
    expect(sigOf(token)).toBe('7a27366e37390c81d5a29153cfb6ac85d123884567cf16721faf26ad5d993b3b');
  });

  it('every vector passes the independent verifier, and a wrong cluster id or secret fails it', () => {
    const cases = [
      ['test-cluster', EXAMPLE],
      ['other-name', EXAMPLE],
      ['a b/c+d=é', EXAMPLE],
      ['  spaced \t name ', EXAMPLE],
      ['c1', ENV_CREDS],
    ];
    for (const [clusterId, credentials] of cases) {
      const token = presignEksToken({ clusterId, credentials, signingTime: T });
      const v = verifyEksToken(token, { clusterId, secretFor: (k) => SECRETS[k], checkAge: false });
      expect(v.accessKeyId).toBe(credentials.accessKeyId);
      expect(() => verifyEksToken(token, { clusterId: 'another', secretFor: (k) => SECRETS[k], checkAge: false })).toThrow('signature mismatch');
      expect(() => verifyEksToken(token, { clusterId, secretFor: () => 'wrong', checkAge: false })).toThrow('signature mismatch');
    }
  });

  it('uses the China partition host for cn- regions and the FIPS host when asked', async () => {
    const cn = urlOf(presignEksToken({ clusterId: 'c', region: 'cn-north-1', credentials: EXAMPLE, signingTime: T }));
    expect(cn.startsWith('https://sts.cn-north-1.amazonaws.com.cn/?')).toBe(true);
    await setEnv({ AWS_USE_FIPS_ENDPOINT: 'true' });
    const fips = presignEksToken({ clusterId: 'c', region: 'us-west-2', credentials: EXAMPLE, signingTime: T });
    expect(urlOf(fips).startsWith('https://sts-fips.us-west-2.amazonaws.com/?')).toBe(true);
    expect(verifyEksToken(fips, { clusterId: 'c', secretFor: (k) => SECRETS[k], checkAge: false }).host).toBe('sts-fips.us-west-2.amazonaws.com');
  });

  it('refuses bad input with a TypeError naming the field', () => {
    expect(() => presignEksToken({ clusterId: 'c' })).toThrow(new TypeError('options.credentials must be an object'));
    expect(() => presignEksToken({ credentials: EXAMPLE })).toThrow(new TypeError('options.clusterId must be a string'));
    expect(() => presignEksToken({ clusterId: 'c', credentials: { accessKeyId: 'A' } })).toThrow(
      new TypeError('options.credentials.secretAccessKey must be a string'),
    );
    expect(() => presignEksToken({ clusterId: 'c', credentials: EXAMPLE, signingTime: new Date('nope') })).toThrow(TypeError);
    expect(() => presignEksToken()).toThrow(new TypeError('options must be an object'));
  });
});

describe('AwsIamStrategy beside Backstage 0.21.11 AwsIamStrategy', () => {
  afterEach(() => jest.useRealTimers());

  it('produces the byte-identical token for the same credentials, cluster and signing time', async () => {
    for (const [region, vars] of [
      [undefined, envCredentials(ENV_CREDS)],
      ['eu-west-1', envCredentials(EXAMPLE)],
    ]) {
      await awsEnv({ ...vars, ...(region ? { AWS_REGION: region } : {}) });
      jest.useFakeTimers({ now: T, doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
      const theirs = new BackstageAwsIamStrategy({ config: new ConfigReader({}) });
      for (const cd of [cluster('test-cluster'), cluster('n', { 'kubernetes.io/x-k8s-aws-id': 'other-name' }), cluster('a b/c+d=é')]) {
        const expected = (await theirs.getCredential(cd, {})).token;
        const clusterId = cd.authMetadata['kubernetes.io/x-k8s-aws-id'] ?? cd.name;
        const creds = vars.AWS_SESSION_TOKEN ? ENV_CREDS : EXAMPLE;
        expect(presignEksToken({ clusterId, credentials: creds, signingTime: T })).toBe(expected);
      }
      jest.useRealTimers();
    }
  });

  it('getCredential tokens equal presignEksToken at the token\'s own X-Amz-Date', async () => {
    await awsEnv(envCredentials(ENV_CREDS));
    const s = new AwsIamStrategy();
    for (const cd of [cluster('test-cluster'), cluster('x', { 'kubernetes.io/x-k8s-aws-id': 'other-name' }), cluster('y', { 'kubernetes.io/x-k8s-aws-id': '' })]) {
      const { type, token } = await s.getCredential(cd, {});
      expect(type).toBe('bearer token');
      const clusterId = cd.authMetadata['kubernetes.io/x-k8s-aws-id'] ?? cd.name;
      const v = verifyEksToken(token, { clusterId, secretFor: (k) => SECRETS[k] });
      expect(v.sessionToken).toBe(ENV_CREDS.sessionToken);
      expect(presignEksToken({ clusterId, credentials: ENV_CREDS, signingTime: v.date })).toBe(token);
    }
  });
});

describe('AwsIamStrategy#getCredential (Backstage AwsIamStrategy.test.ts, ported)', () => {
  beforeEach(() => awsEnv(envCredentials(EXAMPLE)));

  it('returns a presigned url', async () => {
    const { token } = await new AwsIamStrategy().getCredential(cluster('test-cluster'), {});
    // The x-k8s-aws-id header is signed with the cluster name.
    expect(verifyEksToken(token, { clusterId: 'test-cluster', secretFor: (k) => SECRETS[k] }).accessKeyId).toBe('AKIDEXAMPLE');
    expect(urlOf(token)).toMatch(/^https:\/\/sts\.us-east-1\.amazonaws\.com\/\?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=/);
  });

  it('returns a presigned url for specified cluster ID', async () => {
    const { token } = await new AwsIamStrategy().getCredential(cluster('test-cluster', { 'kubernetes.io/x-k8s-aws-id': 'other-name' }), {});
    expect(verifyEksToken(token, { clusterId: 'other-name', secretFor: (k) => SECRETS[k] })).toBeTruthy();
    expect(() => verifyEksToken(token, { clusterId: 'test-cluster', secretFor: (k) => SECRETS[k] })).toThrow('signature mismatch');
  });

  it('fails on signer error', async () => {
    // A control character cannot be a signed header value: refused before the signer,
    // which would name no input.
    const p = new AwsIamStrategy().getCredential(cluster('bad\u0001name'), {});
    await expect(p).rejects.toThrow(Error);
    await expect(p).rejects.toThrow(/^clusterDetails\.name must be free of control characters/);
  });

  it('rejects a non-ARN assume-role value with Malformed ARN', async () => {
    await expect(
      new AwsIamStrategy().getCredential(cluster('c', { 'kubernetes.io/aws-assume-role': 'SomeRole' }), {}),
    ).rejects.toThrow(new Error('Malformed ARN'));
  });

  it('reads AWS_REGION on every call and signs for that region', async () => {
    const s = new AwsIamStrategy();
    const a = await s.getCredential(cluster('c'), {});
    await setEnv({ AWS_REGION: 'ap-southeast-2' });
    const b = await s.getCredential(cluster('c'), {});
    expect(verifyEksToken(a.token, { clusterId: 'c', secretFor: (k) => SECRETS[k] }).region).toBe('us-east-1');
    expect(verifyEksToken(b.token, { clusterId: 'c', secretFor: (k) => SECRETS[k] }).host).toBe('sts.ap-southeast-2.amazonaws.com');
    await setEnv({ AWS_REGION: 'cn-northwest-1' });
    const c = await s.getCredential(cluster('c'), {});
    expect(verifyEksToken(c.token, { clusterId: 'c', secretFor: (k) => SECRETS[k] }).host).toBe('sts.cn-northwest-1.amazonaws.com.cn');
  });

  it('refuses non-string annotations with a TypeError', async () => {
    await expect(
      new AwsIamStrategy().getCredential(cluster('c', { 'kubernetes.io/x-k8s-aws-id': 5 }), {}),
    ).rejects.toThrow(new TypeError("clusterDetails.authMetadata['kubernetes.io/x-k8s-aws-id'] must be a string"));
  });

  it('validates nothing and presents nothing', () => {
    const s = new AwsIamStrategy();
    expect(s.validateCluster({ 'kubernetes.io/aws-assume-role': 'x' })).toEqual([]);
    expect(s.presentAuthMetadata({ 'kubernetes.io/aws-assume-role': 'x' })).toEqual({});
    expect(s.kind).toBe('aws');
  });
});

describe('AwsIamStrategy credentials and caching without STS', () => {
  it('signs with mainAccount static keys from a Backstage Config or plain JSON', async () => {
    await awsEnv(envCredentials(ENV_CREDS));
    const aws = { mainAccount: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: ` ${EXAMPLE.secretAccessKey}\n` } };
    for (const config of [new ConfigReader({ aws }), { aws }]) {
      const { token } = await new AwsIamStrategy({ config }).getCredential(cluster('c'), {});
      const v = verifyEksToken(token, { clusterId: 'c', secretFor: (k) => SECRETS[k] });
      expect(v.accessKeyId).toBe('AKIDEXAMPLE');
      expect(v.sessionToken).toBeUndefined();
    }
  });

  it('names the cluster id that cannot be a header (a control character), wherever it came from', async () => {
    await awsEnv(envCredentials(EXAMPLE));
    const s = new AwsIamStrategy();
    await expect(s.getCredential(cluster('a\u0000b'), {})).rejects.toThrow(
      new TypeError('clusterDetails.name must be free of control characters (it is the x-k8s-aws-id header)'),
    );
    await expect(s.getCredential(cluster('ok', { 'kubernetes.io/x-k8s-aws-id': 'x\ny' }), {})).rejects.toThrow(
      "clusterDetails.authMetadata['kubernetes.io/x-k8s-aws-id'] must be free of control characters",
    );
    expect(() => presignEksToken({ clusterId: '\u007f', credentials: EXAMPLE, signingTime: T })).toThrow(
      new TypeError('options.clusterId must be free of control characters (it is the x-k8s-aws-id header)'),
    );
  });

  it('fails with an Error naming the credential chain when there are no credentials', async () => {
    await awsEnv();
    const p = new AwsIamStrategy({ timeoutMs: 5000 }).getCredential(cluster('c'), {});
    await expect(p).rejects.toThrow(Error);
    await expect(p).rejects.toThrow(/^aws: AWS credential chain: /);
  });

  it('reuses a token (no tokio hop: the native call returns the token itself) and re-signs when the cache is off', async () => {
    await awsEnv(envCredentials(EXAMPLE));
    const cached = new AwsIamStrategy();
    const first = (await cached.getCredential(cluster('c'), {})).token;
    expect(cached.credentialNow(cluster('c'), {})).toBe(first);
    const uncached = new AwsIamStrategy({ tokenCacheSeconds: 0 });
    const a = (await uncached.getCredential(cluster('c'), {})).token;
    // Credentials are cached, so even an uncached token is signed on the JS thread.
    expect(typeof uncached.credentialNow(cluster('c'), {})).toBe('string');
    await new Promise((r) => setTimeout(r, 1100));
    expect((await cached.getCredential(cluster('c'), {})).token).toBe(first);
    const b = (await uncached.getCredential(cluster('c'), {})).token;
    expect(b).not.toBe(a);
    for (const t of [a, b]) expect(verifyEksToken(t, { clusterId: 'c', secretFor: (k) => SECRETS[k] })).toBeTruthy();
  });

  it('keeps tokens of different clusters, regions and roles apart', async () => {
    await awsEnv(envCredentials(EXAMPLE));
    const s = new AwsIamStrategy();
    const a = (await s.getCredential(cluster('a'), {})).token;
    const b = (await s.getCredential(cluster('b'), {})).token;
    await setEnv({ AWS_REGION: 'eu-west-1' });
    const a2 = (await s.getCredential(cluster('a'), {})).token;
    expect(new Set([a, b, a2]).size).toBe(3);
    expect(verifyEksToken(a2, { clusterId: 'a', secretFor: (k) => SECRETS[k] }).region).toBe('eu-west-1');
  });

  it('validates its options and the aws config at construction, with Backstage messages', async () => {
    await awsEnv();
    const bad = (aws) => () => new AwsIamStrategy({ config: { aws } });
    expect(bad({ mainAccount: { accessKeyId: 'A' } })).toThrow(
      new Error('The main AWS integration account has an access key ID configured, but no secret access key.'),
    );
    expect(bad({ accounts: [{ accountId: '111111111111', profile: 'p', roleName: 'r' }] })).toThrow(
      'AWS integration account 111111111111 has both an access key ID and a role name configured, but only one must be specified',
    );
    expect(bad({ accounts: [{ accountId: '111111111111', roleName: 'r', webIdentityTokenFile: '/t', externalId: 'x' }] })).toThrow(
      'AWS integration account 111111111111 has both a web identity token file and an external ID configured; AssumeRoleWithWebIdentity does not support external IDs.',
    );
    expect(bad({ accountDefaults: { externalId: 'x' } })).toThrow(
      'AWS integration account default configuration has an external ID configured, but no role name.',
    );
    expect(() => new AwsIamStrategy({ tokenCacheSeconds: 900 })).toThrow(
      new TypeError('options.tokenCacheSeconds must be a number of seconds from 0 to 840'),
    );
    expect(() => new AwsIamStrategy({ config: { aws: 'x' } })).toThrow(new TypeError('config.aws must be an object'));
  });

  it('is registered under aws', () => {
    expect(strategyClasses.aws).toBe(AwsIamStrategy);
    expect(notYetNative).not.toContain('aws');
  });
});
