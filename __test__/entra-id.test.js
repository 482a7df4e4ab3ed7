'use strict';
// MicrosoftEntraIdStrategy: ports of the (unreleased) Backstage MicrosoftEntraIdStrategy tests,
// per-scope caching, scope validation, and each credential source against the stand-ins.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { ConfigReader } = require('@backstage/config');
const { mockServices } = require('@backstage/backend-test-utils');
const { MicrosoftEntraIdStrategy, strategyClasses } = require('..');
const { EntraStandIn } = require('./helpers/entra-standin');

const ANNOTATION = 'kubernetes.io/microsoft-entra-id-scope';
const logger = mockServices.logger.mock();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The pull request reads `auth.providers.microsoft.<NODE_ENV>`; Jest sets NODE_ENV=test.
const mockConfig = {
  auth: {
    providers: {
      microsoft: {
        test: {
          tenantId: 'microsoft-entra-id-enterprise-application-tenant-id',
          clientId: 'microsoft-entra-id-enterprise-application-client-id',
          clientSecret: 'microsoft-entra-id-enterprise-application-client-secret-LEAKCANARY',
        },
      },
    },
  },
  kubernetes: {
    auth: { providers: { microsoft: { test: { scope: 'microsoft-enterprise-app-id/mapped.permission' } } } },
  },
};

class StaticTokenCredential {
  constructor(expiryInMs) {
    this.expiryInMs = expiryInMs;
    this.count = 0;
  }

  getToken() {
    this.count++;
    if (this.count === 3) return Promise.reject(new Error('Third time never works.'));
    return Promise.resolve({ token: `MY_TOKEN_${this.count}`, expiresOnTimestamp: Date.now() + this.expiryInMs });
  }
}

class ScopeCapturingTokenCredential {
  constructor(expiryInMs) {
    this.expiryInMs = expiryInMs;
    this.lastScope = undefined;
  }

  getToken(scope) {
    this.lastScope = Array.isArray(scope) ? scope[0] : scope;
    return Promise.resolve({ token: `TOKEN_FOR_${this.lastScope}`, expiresOnTimestamp: Date.now() + this.expiryInMs });
  }
}

const clusterWithoutAnnotation = { name: 'test-cluster', url: 'https://localhost:6443', authMetadata: {} };

describe('MicrosoftEntraIdStrategy tests', () => {
  afterEach(() => {
    jest.useRealTimers();
  });

  const config = new ConfigReader(mockConfig);

  it('should get Azure token', async () => {
    const strategy = new MicrosoftEntraIdStrategy(logger, { config }, new StaticTokenCredential(5 * 60 * 1000));
    const credential = await strategy.getCredential(clusterWithoutAnnotation);
    expect(credential).toEqual({ type: 'bearer token', token: 'MY_TOKEN_1' });
  });

  it('should re-use token before expiry', async () => {
    const strategy = new MicrosoftEntraIdStrategy(logger, { config }, new StaticTokenCredential(20 * 60 * 1000));
    expect(await strategy.getCredential(clusterWithoutAnnotation)).toEqual({ type: 'bearer token', token: 'MY_TOKEN_1' });
    expect(await strategy.getCredential(clusterWithoutAnnotation)).toEqual({ type: 'bearer token', token: 'MY_TOKEN_1' });
  });

  it('should issue new token 15 minutes befory expiry', async () => {
    jest.useFakeTimers();
    const strategy = new MicrosoftEntraIdStrategy(logger, { config }, new StaticTokenCredential(16 * 60 * 1000));
    expect(await strategy.getCredential(clusterWithoutAnnotation)).toEqual({ type: 'bearer token', token: 'MY_TOKEN_1' });
    jest.setSystemTime(Date.now() + 2 * 60 * 1000);
    expect(await strategy.getCredential(clusterWithoutAnnotation)).toEqual({ type: 'bearer token', token: 'MY_TOKEN_2' });
  });

  it('should re-use existing token if there is afailure', async () => {
    jest.useFakeTimers();
    const strategy = new MicrosoftEntraIdStrategy(logger, { config }, new StaticTokenCredential(16 * 60 * 1000));
    expect(await strategy.getCredential(clusterWithoutAnnotation)).toEqual({ type: 'bearer token', token: 'MY_TOKEN_1' });
    jest.setSystemTime(Date.now() + 2 * 60 * 1000);
    expect(await strategy.getCredential(clusterWithoutAnnotation)).toEqual({ type: 'bearer token', token: 'MY_TOKEN_2' });
    jest.setSystemTime(Date.now() + 2 * 60 * 1000);
    expect(await strategy.getCredential(clusterWithoutAnnotation)).toEqual({ type: 'bearer token', token: 'MY_TOKEN_2' });
    expect(await strategy.getCredential(clusterWithoutAnnotation)).toEqual({ type: 'bearer token', token: 'MY_TOKEN_4' });
  });

  it('should throw if existing token expired and failed to fetch a new one', async () => {
    jest.useFakeTimers();
    const strategy = new MicrosoftEntraIdStrategy(logger, { config }, new StaticTokenCredential(16 * 60 * 1000));
    expect(await strategy.getCredential(clusterWithoutAnnotation)).toEqual({ type: 'bearer token', token: 'MY_TOKEN_1' });
    jest.setSystemTime(Date.now() + 2 * 60 * 1000);
    expect(await strategy.getCredential(clusterWithoutAnnotation)).toEqual({ type: 'bearer token', token: 'MY_TOKEN_2' });
    jest.setSystemTime(Date.now() + 17 * 60 * 1000);
    await expect(strategy.getCredential(clusterWithoutAnnotation)).rejects.toThrow();
  });

  it('should use annotation scope when present in authMetadata', async () => {
    const tokenCredential = new ScopeCapturingTokenCredential(20 * 60 * 1000);
    const strategy = new MicrosoftEntraIdStrategy(logger, { config }, tokenCredential);
    const cluster = { name: 'annotated-cluster', url: 'https://localhost:6443', authMetadata: { [ANNOTATION]: 'custom-app-id/.default' } };
    expect(await strategy.getCredential(cluster)).toEqual({ type: 'bearer token', token: 'TOKEN_FOR_custom-app-id/.default' });
    expect(tokenCredential.lastScope).toBe('custom-app-id/.default');
  });

  it('should fall back to config scope when annotation is empty string', async () => {
    const tokenCredential = new ScopeCapturingTokenCredential(20 * 60 * 1000);
    const strategy = new MicrosoftEntraIdStrategy(logger, { config }, tokenCredential);
    const cluster = { name: 'empty-annotation-cluster', url: 'https://localhost:6443', authMetadata: { [ANNOTATION]: '' } };
    expect(await strategy.getCredential(cluster)).toEqual({
      type: 'bearer token',
      token: 'TOKEN_FOR_microsoft-enterprise-app-id/mapped.permission',
    });
    expect(tokenCredential.lastScope).toBe('microsoft-enterprise-app-id/mapped.permission');
  });
});

describe('MicrosoftEntraIdStrategy beyond the pull request', () => {
  it('is registered under microsoftEntraId (no dash)', () => {
    expect(strategyClasses.microsoftEntraId).toBe(MicrosoftEntraIdStrategy);
    expect(new MicrosoftEntraIdStrategy().kind).toBe('microsoftEntraId');
  });

  it('one cache entry (and one getToken call) per scope', async () => {
    const getToken = jest.fn(async (scope) => ({ token: `T_${scope}`, expiresOnTimestamp: Date.now() + 3600_000 }));
    const strategy = new MicrosoftEntraIdStrategy({ tokenCredential: { getToken }, scope: 'default/.default' });
    const cluster = (scope) => ({ name: 'c', url: 'https://x', authMetadata: scope === undefined ? {} : { [ANNOTATION]: scope } });
    const scopes = ['a/.default', 'b/.default', undefined, 'a/.default'];
    const results = await Promise.all(
      Array.from({ length: 400 }, (_, i) => strategy.getCredential(cluster(scopes[i % scopes.length]))),
    );
    expect(results.slice(0, 4).map((r) => r.token)).toEqual(['T_a/.default', 'T_b/.default', 'T_default/.default', 'T_a/.default']);
    expect(getToken).toHaveBeenCalledTimes(3);
    expect(strategy.cachedEntries).toBe(3);
  });

  it('validateCluster reports a cluster without a scope, and a non-string scope', () => {
    const bare = new MicrosoftEntraIdStrategy();
    const [err] = bare.validateCluster({});
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toContain("has no Microsoft Entra ID scope: set authMetadata['kubernetes.io/microsoft-entra-id-scope']");
    expect(bare.validateCluster({ [ANNOTATION]: 'app/.default' })).toEqual([]);
    expect(bare.validateCluster({ [ANNOTATION]: 42 }).map((e) => e.message)).toEqual([
      "authMetadata['kubernetes.io/microsoft-entra-id-scope'] must be a string",
    ]);
    expect(new MicrosoftEntraIdStrategy({ scope: 'd/.default' }).validateCluster({})).toEqual([]);
    expect(bare.presentAuthMetadata({ [ANNOTATION]: 'app/.default' })).toEqual({});
  });

  it('getCredential for a cluster without a scope rejects naming the cluster', async () => {
    const strategy = new MicrosoftEntraIdStrategy({ tokenCredential: { getToken: async () => null } });
    await expect(strategy.getCredential({ name: 'no-scope', url: 'https://x', authMetadata: {} })).rejects.toThrow(
      "microsoftEntraId: cluster 'no-scope' has no Microsoft Entra ID scope",
    );
  });

  it("logs the pull request's lines", async () => {
    const log = mockServices.logger.mock();
    const strategy = new MicrosoftEntraIdStrategy(log, { config: new ConfigReader(mockConfig) }, {
      getToken: async () => {
        throw new Error('nope');
      },
    });
    await expect(strategy.getCredential(clusterWithoutAnnotation)).rejects.toThrow('nope');
    await sleep(20);
    expect(log.info).toHaveBeenCalledWith('Fetching new Microsoft Entra ID token');
    expect(log.error).toHaveBeenCalledWith('Unable to fetch Microsoft Entra ID token', expect.any(Error));
  });
});

describe('MicrosoftEntraIdStrategy credential sources against the stand-ins', () => {
  let entra;
  let tmp;
  const cluster = (scope) => ({ name: 'c', url: 'https://x', authMetadata: { [ANNOTATION]: scope } });

  beforeAll(async () => {
    entra = await new EntraStandIn({
      clients: {
        'config-app': { secret: 'config-secret-LEAKCANARY' },
        'workload-app': { federatedToken: 'federated-LEAKCANARY' },
      },
    }).start();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'entra-test-'));
  });

  afterAll(async () => {
    await entra.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  beforeEach(() => {
    entra.fault = undefined;
    entra.requests.length = 0;
  });

  it('client secret from Backstage config, per-scope tokens, each fetched once', async () => {
    const config = new ConfigReader({
      auth: { providers: { microsoft: { test: { tenantId: entra.tenantId, clientId: 'config-app', clientSecret: 'config-secret-LEAKCANARY' } } } },
      kubernetes: { auth: { providers: { microsoft: { test: { scope: 'api://default/.default' } } } } },
    });
    const strategy = new MicrosoftEntraIdStrategy({ config, authorityHost: entra.url });
    const a = await strategy.getCredential(cluster('api://a/.default'));
    const b = await strategy.getCredential(cluster('api://b/.default'));
    const d = await strategy.getCredential(clusterWithoutAnnotation);
    for (let i = 0; i < 10; i++) {
      expect(await strategy.getCredential(cluster('api://a/.default'))).toEqual(a);
    }
    expect(entra.verify(a.token, 'api://a/.default')).toEqual({ clientId: 'config-app', scope: 'api://a/.default', via: 'secret' });
    expect(entra.verify(b.token, 'api://b/.default')).toBeTruthy();
    expect(entra.verify(d.token, 'api://default/.default')).toBeTruthy();
    expect(entra.tokenRequests().map((r) => r.scope)).toEqual(['api://a/.default', 'api://b/.default', 'api://default/.default']);
  });

  it('a wrong client secret is refused with the AADSTS code and no secret in the message', async () => {
    const strategy = new MicrosoftEntraIdStrategy({
      tenantId: entra.tenantId,
      clientId: 'config-app',
      clientSecret: 'wrong-LEAKCANARY',
      authorityHost: entra.url,
    });
    const err = await strategy.getCredential(cluster('api://a/.default')).catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toBe(
      `microsoftEntraId: Entra token endpoint ${entra.tokenUrl}: HTTP 401 AADSTS7000215 invalid_client: Invalid client secret provided.`,
    );
  });

  it('workload identity from the environment', async () => {
    const file = path.join(tmp, 'token');
    fs.writeFileSync(file, 'federated-LEAKCANARY');
    const strategy = new MicrosoftEntraIdStrategy({
      env: { AZURE_AUTHORITY_HOST: entra.url, AZURE_TENANT_ID: entra.tenantId, AZURE_CLIENT_ID: 'workload-app', AZURE_FEDERATED_TOKEN_FILE: file },
    });
    const c = await strategy.getCredential(cluster('api://w/.default'));
    expect(entra.verify(c.token, 'api://w/.default')).toEqual({ clientId: 'workload-app', scope: 'api://w/.default', via: 'workload' });
  });

  it('managed identity (IMDS) with the resource of the scope', async () => {
    const strategy = new MicrosoftEntraIdStrategy({ env: { AZURE_POD_IDENTITY_AUTHORITY_HOST: entra.url } });
    const c = await strategy.getCredential(cluster('api://m/.default'));
    expect(entra.verify(c.token, 'api://m/.default')).toMatchObject({ via: 'imds' });
  });

  it('never runs the developer CLIs', async () => {
    fs.writeFileSync(path.join(tmp, 'az'), `#!/bin/sh\ntouch "${tmp}/az-ran"\nexit 1\n`, { mode: 0o755 });
    const strategy = new MicrosoftEntraIdStrategy({
      env: { AZURE_POD_IDENTITY_AUTHORITY_HOST: 'http://127.0.0.1:1', PATH: tmp },
      timeoutMs: 500,
    });
    await expect(strategy.getCredential(cluster('api://m/.default'))).rejects.toThrow('DefaultAzureCredential');
    expect(fs.existsSync(path.join(tmp, 'az-ran'))).toBe(false);
  });
});
