'use strict';
// AzureIdentityStrategy: ports of Backstage's AzureIdentityStrategy.test.ts (same names, same
// fake timers, same JS TokenCredential), the sticky failure Backstage has and we do not, and
// the native DefaultAzureCredential sources against loopback stand-ins.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { mockServices } = require('@backstage/backend-test-utils');
const { AzureIdentityStrategy, strategyClasses, notYetNative } = require('..');
const { EntraStandIn, clientCertificate, AKS_SCOPE } = require('./helpers/entra-standin');

const logger = mockServices.logger.mock();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Backstage's StaticTokenCredential, verbatim in behaviour.
class StaticTokenCredential {
  constructor(expiryInMs) {
    this.expiryInMs = expiryInMs;
    this.count = 0;
  }

  getToken() {
    this.count++;
    if (this.count === 3) {
      return Promise.reject(new Error('Third time never works.'));
    }
    return Promise.resolve({
      token: `MY_TOKEN_${this.count}`,
      expiresOnTimestamp: Date.now() + this.expiryInMs,
    });
  }
}

describe('AzureIdentityStrategy tests', () => {
  afterEach(() => {
    jest.useRealTimers();
  });

  it('should get Azure token', async () => {
    const strategy = new AzureIdentityStrategy(logger, new StaticTokenCredential(5 * 60 * 1000));

    const credential = await strategy.getCredential();
    expect(credential).toEqual({ type: 'bearer token', token: 'MY_TOKEN_1' });
  });

  it('should re-use token before expiry', async () => {
    const strategy = new AzureIdentityStrategy(logger, new StaticTokenCredential(20 * 60 * 1000));

    const credential = await strategy.getCredential();
    expect(credential).toEqual({ type: 'bearer token', token: 'MY_TOKEN_1' });

    const credential2 = await strategy.getCredential();
    expect(credential2).toEqual({ type: 'bearer token', token: 'MY_TOKEN_1' });
  });

  it('should issue new token 15 minutes befory expiry', async () => {
    jest.useFakeTimers();

    const strategy = new AzureIdentityStrategy(
      logger,
      new StaticTokenCredential(16 * 60 * 1000), // token expires in 16min
    );

    const credential = await strategy.getCredential();
    expect(credential).toEqual({ type: 'bearer token', token: 'MY_TOKEN_1' });

    jest.setSystemTime(Date.now() + 2 * 60 * 1000); // advance time by 2mins

    const credential2 = await strategy.getCredential();
    expect(credential2).toEqual({ type: 'bearer token', token: 'MY_TOKEN_2' });
  });

  it('should re-use existing token if there is afailure', async () => {
    jest.useFakeTimers();

    const strategy = new AzureIdentityStrategy(
      logger,
      new StaticTokenCredential(16 * 60 * 1000), // new tokens expires in 16min
    );

    const credential = await strategy.getCredential();
    expect(credential).toEqual({ type: 'bearer token', token: 'MY_TOKEN_1' });

    jest.setSystemTime(Date.now() + 2 * 60 * 1000); // advance time by 2min

    const credential2 = await strategy.getCredential();
    expect(credential2).toEqual({ type: 'bearer token', token: 'MY_TOKEN_2' });

    jest.setSystemTime(Date.now() + 2 * 60 * 1000); // advance time by 2min

    const credential3 = await strategy.getCredential();
    expect(credential3).toEqual({ type: 'bearer token', token: 'MY_TOKEN_2' });

    const credential4 = await strategy.getCredential();
    expect(credential4).toEqual({ type: 'bearer token', token: 'MY_TOKEN_4' });
  });

  it('should throw if existing token expired and failed to fetch a new one', async () => {
    jest.useFakeTimers();

    const strategy = new AzureIdentityStrategy(
      logger,
      new StaticTokenCredential(16 * 60 * 1000), // new tokens expires in 16min
    );

    const credential = await strategy.getCredential();
    expect(credential).toEqual({ type: 'bearer token', token: 'MY_TOKEN_1' });

    jest.setSystemTime(Date.now() + 2 * 60 * 1000); // advance time by 2min

    const credential2 = await strategy.getCredential();
    expect(credential2).toEqual({ type: 'bearer token', token: 'MY_TOKEN_2' });

    jest.setSystemTime(Date.now() + 17 * 60 * 1000); // advance time by 17min

    await expect(strategy.getCredential()).rejects.toThrow();
  });
});

describe('AzureIdentityStrategy beyond Backstage', () => {
  it('is registered under azure', () => {
    expect(strategyClasses.azure).toBe(AzureIdentityStrategy);
    expect(notYetNative).not.toContain('azure');
    expect(new AzureIdentityStrategy({ env: {} }).kind).toBe('azure');
  });

  it("logs Backstage's lines through the logger it was given, with the error", async () => {
    const log = mockServices.logger.mock();
    const credential = new StaticTokenCredential(16 * 60 * 1000);
    let now = Date.now();
    const strategy = new AzureIdentityStrategy({ logger: log, tokenCredential: credential, now: () => now });
    await strategy.getCredential();
    now += 2 * 60 * 1000;
    await strategy.getCredential();
    now += 2 * 60 * 1000;
    await strategy.getCredential(); // the third fetch fails; the valid token is served
    await sleep(20);
    expect(log.info).toHaveBeenCalledWith('Fetching new Azure token for AKS');
    expect(log.info).toHaveBeenCalledTimes(3);
    expect(log.error).toHaveBeenCalledTimes(1);
    const [message, err] = log.error.mock.calls[0];
    expect(message).toBe('Unable to fetch Azure token');
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toContain('Third time never works.');
  });

  it('passes the AKS scope and a 10 s timeout to the TokenCredential', async () => {
    const getToken = jest.fn(async () => ({ token: 'tok-LEAKCANARY', expiresOnTimestamp: Date.now() + 3600_000 }));
    const strategy = new AzureIdentityStrategy(logger, { getToken });
    await strategy.getCredential();
    expect(getToken).toHaveBeenCalledWith(AKS_SCOPE, { requestOptions: { timeout: 10000 } });
  });

  it('the sticky failure is gone: after a failed first fetch, a later call fetches again', async () => {
    // Backstage keeps the rejected promise after a failure with no valid token, so every later
    // call rejects with it until the process restarts (contract 5.4).
    let calls = 0;
    const credential = {
      async getToken() {
        calls++;
        if (calls === 1) throw new Error('Entra ID is down');
        return { token: 'recovered-LEAKCANARY', expiresOnTimestamp: Date.now() + 3600_000 };
      },
    };
    const strategy = new AzureIdentityStrategy({ logger, tokenCredential: credential, failureBackoffMs: 300 });
    await expect(strategy.getCredential()).rejects.toThrow('Entra ID is down');
    // Callers right after the failure share it (no second request to a dead endpoint)...
    await expect(strategy.getCredential()).rejects.toThrow('Entra ID is down');
    expect(calls).toBe(1);
    // ...and after the short backoff the next call tries again.
    await sleep(350);
    await expect(strategy.getCredential()).resolves.toEqual({ type: 'bearer token', token: 'recovered-LEAKCANARY' });
    expect(calls).toBe(2);
  });

  it('a credential resolving null rejects with AccessToken is null', async () => {
    const strategy = new AzureIdentityStrategy(logger, { getToken: async () => null });
    await expect(strategy.getCredential()).rejects.toThrow('AccessToken is null');
  });

  it('a credential that never answers is bounded by timeoutMs', async () => {
    const strategy = new AzureIdentityStrategy({ tokenCredential: { getToken: () => new Promise(() => {}) }, timeoutMs: 300 });
    const started = Date.now();
    const err = await strategy.getCredential().catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toMatch(/azure: fetching a token for 6dae42f8-4368-4678-94ff-3960e28e3630\/.default did not complete within \d+ ms/);
    expect(Date.now() - started).toBeLessThan(1300);
  });

  it('1000 concurrent calls make one getToken call', async () => {
    const getToken = jest.fn(async () => {
      await sleep(50);
      return { token: 'shared-LEAKCANARY', expiresOnTimestamp: Date.now() + 3600_000 };
    });
    const strategy = new AzureIdentityStrategy(logger, { getToken });
    const results = await Promise.all(Array.from({ length: 1000 }, () => strategy.getCredential()));
    expect(new Set(results.map((r) => r.token))).toEqual(new Set(['shared-LEAKCANARY']));
    expect(getToken).toHaveBeenCalledTimes(1);
  });

  it('refuses a tokenCredential without getToken', () => {
    expect(() => new AzureIdentityStrategy(logger, {})).toThrow(TypeError);
    expect(() => new AzureIdentityStrategy(logger, {})).toThrow('tokenCredential must be a TokenCredential');
  });
});

describe('the native DefaultAzureCredential chain', () => {
  let entra;
  let tmp;
  const cert = clientCertificate();
  const certPkcs8 = clientCertificate({ pkcs8: true });

  beforeAll(async () => {
    entra = await new EntraStandIn({
      clients: {
        'secret-app': { secret: 'client-secret-LEAKCANARY' },
        'cert-app': { certificate: cert },
        'cert8-app': { certificate: certPkcs8 },
        'workload-app': { federatedToken: 'federated-token-LEAKCANARY' },
      },
    }).start();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'azure-test-'));
  });

  afterAll(async () => {
    await entra.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  beforeEach(() => {
    entra.fault = undefined;
    entra.delayMs = 0;
    entra.requests.length = 0;
  });

  // The environment a chain reads; IMDS points at the stand-in so no real one is ever asked.
  const baseEnv = () => ({
    AZURE_AUTHORITY_HOST: entra.url,
    AZURE_POD_IDENTITY_AUTHORITY_HOST: entra.url,
    PATH: tmp,
  });
  const secretEnv = () => ({
    ...baseEnv(),
    AZURE_TENANT_ID: entra.tenantId,
    AZURE_CLIENT_ID: 'secret-app',
    AZURE_CLIENT_SECRET: 'client-secret-LEAKCANARY',
  });

  async function tokenOf(strategy) {
    const c = await strategy.getCredential();
    expect(c.type).toBe('bearer token');
    return c.token;
  }

  it('EnvironmentCredential with a client secret', async () => {
    const token = await tokenOf(new AzureIdentityStrategy({ env: secretEnv() }));
    expect(entra.verify(token)).toEqual({ clientId: 'secret-app', scope: AKS_SCOPE, via: 'secret' });
  });

  it.each([
    ['PKCS#1', 'cert-app', cert],
    ['PKCS#8', 'cert8-app', certPkcs8],
  ])('EnvironmentCredential with a client certificate (%s key): a signed assertion with x5t', async (_, clientId, c) => {
    const file = path.join(tmp, `${clientId}.pem`);
    fs.writeFileSync(file, c.file);
    const env = { ...baseEnv(), AZURE_TENANT_ID: entra.tenantId, AZURE_CLIENT_ID: clientId, AZURE_CLIENT_CERTIFICATE_PATH: file };
    const token = await tokenOf(new AzureIdentityStrategy({ env }));
    expect(entra.verify(token)).toEqual({ clientId, scope: AKS_SCOPE, via: 'certificate' });
  });

  it('a certificate the endpoint does not trust is refused with the AADSTS code', async () => {
    const other = clientCertificate();
    const file = path.join(tmp, 'other.pem');
    fs.writeFileSync(file, other.file);
    const env = { ...baseEnv(), AZURE_TENANT_ID: entra.tenantId, AZURE_CLIENT_ID: 'cert-app', AZURE_CLIENT_CERTIFICATE_PATH: file };
    const err = await new AzureIdentityStrategy({ env }).getCredential().catch((e) => e);
    expect(err.message).toContain(`Entra token endpoint ${entra.tokenUrl}`);
    expect(err.message).toContain('AADSTS700027');
    expect(err.message).not.toContain('LEAKCANARY');
  });

  it('WorkloadIdentityCredential: the federated token file is the client assertion', async () => {
    const file = path.join(tmp, 'federated-token');
    fs.writeFileSync(file, 'federated-token-LEAKCANARY\n');
    const env = { ...baseEnv(), AZURE_TENANT_ID: entra.tenantId, AZURE_CLIENT_ID: 'workload-app', AZURE_FEDERATED_TOKEN_FILE: file };
    const token = await tokenOf(new AzureIdentityStrategy({ env }));
    expect(entra.verify(token)).toEqual({ clientId: 'workload-app', scope: AKS_SCOPE, via: 'workload' });
  });

  it('ManagedIdentityCredential through IMDS sends Metadata: true (after a probe without it)', async () => {
    const token = await tokenOf(new AzureIdentityStrategy({ env: baseEnv() }));
    expect(entra.verify(token)).toMatchObject({ via: 'imds', scope: AKS_SCOPE });
    expect(entra.requests.map((r) => [r.endpoint, r.metadata])).toEqual([
      ['imds', undefined],
      ['imds', 'true'],
    ]);
  });

  it('probes IMDS once: after the chain chose it, token requests go straight to it', async () => {
    const strategy = new AzureIdentityStrategy({ env: baseEnv(), cache: false });
    await tokenOf(strategy);
    await tokenOf(strategy);
    expect(entra.requests.map((r) => [r.endpoint, r.metadata])).toEqual([
      ['imds', undefined],
      ['imds', 'true'],
      ['imds', 'true'],
    ]);
  });

  it('ManagedIdentityCredential on App Service sends X-IDENTITY-HEADER', async () => {
    const env = { ...baseEnv(), IDENTITY_ENDPOINT: `${entra.url}/appservice/token`, IDENTITY_HEADER: entra.identityHeader, AZURE_CLIENT_ID: 'user-assigned' };
    const token = await tokenOf(new AzureIdentityStrategy({ env }));
    expect(entra.verify(token)).toEqual({ via: 'appservice', scope: AKS_SCOPE, clientId: 'user-assigned' });
  });

  it('the environment wins over managed identity (DefaultAzureCredential order)', async () => {
    await tokenOf(new AzureIdentityStrategy({ env: secretEnv() }));
    expect(entra.requests.map((r) => r.endpoint)).toEqual(['token']);
  });

  function script(name, body) {
    const file = path.join(tmp, name);
    fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  }

  it('AzureCliCredential runs az account get-access-token for the AKS resource', async () => {
    const expiresOn = Math.floor(Date.now() / 1000) + 3600;
    script('az', `echo "$@" > "${tmp}/az-args"; echo '{"accessToken":"az-token-LEAKCANARY","expires_on":${expiresOn},"tokenType":"Bearer"}'`);
    try {
      const strategy = new AzureIdentityStrategy({ env: { ...baseEnv(), AZURE_TOKEN_CREDENTIALS: 'dev' } });
      expect(await tokenOf(strategy)).toBe('az-token-LEAKCANARY');
      expect(fs.readFileSync(path.join(tmp, 'az-args'), 'utf8').trim()).toBe(
        'account get-access-token --output json --resource 6dae42f8-4368-4678-94ff-3960e28e3630',
      );
    } finally {
      fs.rmSync(path.join(tmp, 'az'));
    }
  });

  it('AzureDeveloperCliCredential runs azd auth token when az is not there', async () => {
    script('azd', `echo '{"token":"azd-token-LEAKCANARY","expiresOn":"${new Date(Date.now() + 3600_000).toISOString().replace(/\.\d+Z$/, 'Z')}"}'`);
    try {
      const strategy = new AzureIdentityStrategy({ env: { ...baseEnv(), AZURE_TOKEN_CREDENTIALS: 'dev' } });
      expect(await tokenOf(strategy)).toBe('azd-token-LEAKCANARY');
    } finally {
      fs.rmSync(path.join(tmp, 'azd'));
    }
  });

  it('an az that hangs is killed at the timeout', async () => {
    script('az', `echo $$ > "${tmp}/az-pid"; exec /bin/sleep 30`);
    try {
      const strategy = new AzureIdentityStrategy({ env: { ...baseEnv(), AZURE_TOKEN_CREDENTIALS: 'AzureCliCredential' }, timeoutMs: 500 });
      const started = Date.now();
      const err = await strategy.getCredential().catch((e) => e);
      expect(Date.now() - started).toBeLessThan(1500);
      expect(err).toBeInstanceOf(Error);
      expect(err.message).toMatch(/az CLI: az did not finish within 500 ms and was killed/);
      const pid = Number(fs.readFileSync(path.join(tmp, 'az-pid'), 'utf8'));
      await sleep(100);
      // Killed: gone, or a zombie until the runtime reaps it; never still sleeping.
      const running = () => {
        try {
          return !/^\d+ \([^)]*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
        } catch {
          return false;
        }
      };
      expect(running()).toBe(false);
    } finally {
      fs.rmSync(path.join(tmp, 'az'));
    }
  });

  it('with nothing available, the error lists why each source was skipped', async () => {
    const env = { AZURE_TOKEN_CREDENTIALS: 'dev', PATH: tmp };
    const err = await new AzureIdentityStrategy({ env }).getCredential().catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toContain('azure: DefaultAzureCredential: no credential source is available');
    expect(err.message).toContain('AzureCliCredential: Azure CLI (az) not found on PATH');
    expect(err.message).toContain('AzureDeveloperCliCredential: Azure Developer CLI (azd) not found on PATH');
  });

  it('a bad AZURE_TOKEN_CREDENTIALS fails the call, not the construction', async () => {
    const strategy = new AzureIdentityStrategy({ env: { AZURE_TOKEN_CREDENTIALS: 'sometimes' } });
    await expect(strategy.getCredential()).rejects.toThrow('AZURE_TOKEN_CREDENTIALS=sometimes is not one of prod, dev');
  });

  it('1000 concurrent calls make one request to the token endpoint', async () => {
    entra.delayMs = 100;
    const strategy = new AzureIdentityStrategy({ env: secretEnv() });
    const tokens = await Promise.all(Array.from({ length: 1000 }, () => tokenOf(strategy)));
    expect(new Set(tokens).size).toBe(1);
    expect(entra.tokenRequests()).toHaveLength(1);
    // Cached: no further request.
    await tokenOf(strategy);
    expect(entra.tokenRequests()).toHaveLength(1);
  });

  it('serves the still-valid token while a refresh fails, then the new one', async () => {
    let now = Date.now();
    const strategy = new AzureIdentityStrategy({ env: secretEnv(), now: () => now });
    const first = await tokenOf(strategy);
    now += 50 * 60 * 1000; // past refresh (expires - 15 min), before expiry (60 min)
    entra.fault = 500;
    expect(await tokenOf(strategy)).toBe(first);
    entra.fault = undefined;
    const second = await tokenOf(strategy);
    expect(second).not.toBe(first);
    expect(entra.verify(second)).toBeTruthy();
  });

  describe.each([
    ['Entra token endpoint', () => ({ env: secretEnv() }), () => `Entra token endpoint ${entra.tokenUrl}`],
    ['IMDS', () => ({ env: { ...baseEnv(), AZURE_TOKEN_CREDENTIALS: 'ManagedIdentityCredential' } }), () => `IMDS ${entra.url}/metadata/identity/oauth2/token`],
    [
      'App Service',
      () => ({ env: { ...baseEnv(), IDENTITY_ENDPOINT: `${entra.url}/appservice/token`, IDENTITY_HEADER: entra.identityHeader } }),
      () => `App Service managed identity endpoint ${entra.url}/appservice/token`,
    ],
  ])('faults at the %s', (_, options, endpoint) => {
    it.each([
      [500, /HTTP 500 AADSTS50000 temporarily_unavailable/],
      [429, /HTTP 429 AADSTS50196 temporarily_unavailable/],
      ['malformed', /the answer is not JSON/],
      ['missing', /the answer has no access_token/],
      ['hang', /no answer within 400 ms/],
    ])('%s: a clear Error within the timeout, then recovery', async (fault, reason) => {
      const strategy = new AzureIdentityStrategy({ ...options(), timeoutMs: 400, failureBackoffMs: 100 });
      entra.fault = fault;
      const started = Date.now();
      const err = await strategy.getCredential().catch((e) => e);
      expect(Date.now() - started).toBeLessThan(1400);
      expect(err).toBeInstanceOf(Error);
      expect(err.message).toContain(endpoint());
      expect(err.message).toMatch(reason);
      expect(err.message).not.toContain('LEAKCANARY');
      entra.fault = undefined;
      await sleep(120);
      const token = await tokenOf(strategy);
      expect(entra.verify(token)).toBeTruthy();
    });
  });
});
