'use strict';
// Ports of Backstage's auth test cases (contract section 11) for the pass-through
// strategies, ServiceAccountStrategy and DispatchStrategy, against the built binding.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const {
  AksStrategy,
  AnonymousStrategy,
  DispatchStrategy,
  GoogleStrategy,
  OidcStrategy,
  ServiceAccountStrategy,
} = require('..');

const cluster = (authMetadata = {}) => ({ name: 'test-cluster', url: 'https://127.0.0.1:6443', authMetadata });

describe('AksStrategy', () => {
  it('uses auth.aks value as bearer token', async () => {
    await expect(new AksStrategy().getCredential(cluster(), { aks: 'aksToken-LEAKCANARY' })).resolves.toStrictEqual({
      type: 'bearer token',
      token: 'aksToken-LEAKCANARY',
    });
  });

  it('is anonymous when auth.aks is missing, empty or falsy', async () => {
    const s = new AksStrategy();
    for (const auth of [{}, { aks: '' }, { aks: null }, { aks: 0 }, { aks: false }, undefined, null]) {
      await expect(s.getCredential(cluster(), auth)).resolves.toStrictEqual({ type: 'anonymous' });
    }
  });

  it('refuses a non-string token with a TypeError naming the field', async () => {
    const s = new AksStrategy();
    for (const aks of [42, { token: 'x' }, ['t'], true]) {
      await expect(s.getCredential(cluster(), { aks })).rejects.toThrow(
        new TypeError('requestAuth.aks must be a string'),
      );
    }
  });

  it('passes the token through unchanged, even one that is not well-formed UTF-16', async () => {
    // Backstage hands back the very string it was given; so do we (a lone surrogate would not
    // survive a trip through UTF-8).
    const token = 'aks-\uD800-LEAKCANARY';
    const s = new AksStrategy();
    await expect(s.getCredential(cluster(), { aks: token })).resolves.toStrictEqual({ type: 'bearer token', token });
    // Read through a getter, the native side reads it itself: same answer.
    const auth = Object.defineProperty({}, 'aks', { get: () => token, enumerable: true });
    await expect(s.getCredential(cluster(), auth)).resolves.toStrictEqual({ type: 'bearer token', token });
  });

  it('validates nothing and presents nothing', () => {
    const s = new AksStrategy();
    expect(s.validateCluster({ 'kubernetes.io/auth-provider': 'aks' })).toEqual([]);
    expect(s.presentAuthMetadata({ some: 'thing' })).toEqual({});
  });
});

describe('AnonymousStrategy', () => {
  it('always returns an anonymous credential, whatever the arguments', async () => {
    const s = new AnonymousStrategy();
    await expect(s.getCredential(cluster(), { aks: 'x' })).resolves.toStrictEqual({ type: 'anonymous' });
    await expect(s.getCredential(undefined, undefined)).resolves.toStrictEqual({ type: 'anonymous' });
  });
});

describe('GoogleStrategy', () => {
  it('uses auth.google as bearer token', async () => {
    await expect(new GoogleStrategy().getCredential(cluster(), { google: 'goog' })).resolves.toStrictEqual({
      type: 'bearer token',
      token: 'goog',
    });
  });

  it('rejects with Backstage message when the token is missing', async () => {
    const s = new GoogleStrategy();
    for (const auth of [{}, { google: '' }, undefined]) {
      await expect(s.getCredential(cluster(), auth)).rejects.toThrow(
        new Error('Google token not found under auth.google in request body'),
      );
    }
  });
});

describe('OidcStrategy', () => {
  const oidc = cluster({ 'kubernetes.io/oidc-token-provider': 'okta' });

  it('returns auth token', async () => {
    await expect(new OidcStrategy().getCredential(oidc, { oidc: { okta: 'fakeToken-LEAKCANARY' } })).resolves.toStrictEqual({
      type: 'bearer token',
      token: 'fakeToken-LEAKCANARY',
    });
  });

  it('fails when token provider is not configured', async () => {
    await expect(new OidcStrategy().getCredential(cluster(), { oidc: { okta: 'fakeToken-LEAKCANARY' } })).rejects.toThrow(
      'oidc authProvider requires a configured oidcTokenProvider',
    );
  });

  it('fails when token is not included in request body', async () => {
    const s = new OidcStrategy();
    for (const auth of [{}, { oidc: {} }, { oidc: 'not-an-object' }, { oidc: { other: 'x' } }, undefined]) {
      await expect(s.getCredential(oidc, auth)).rejects.toThrow('Auth token not found under oidc.okta in request body');
    }
  });

  it('fails when token provider is not specified', () => {
    const errors = new OidcStrategy().validateCluster({});
    expect(errors).toContainEqual(new Error("Must specify a token provider for 'oidc' strategy"));
    expect(errors[0]).toBeInstanceOf(Error);
    expect(new OidcStrategy().validateCluster({ 'kubernetes.io/oidc-token-provider': 'okta' })).toEqual([]);
  });

  it('answers each call from its own inputs: nothing carries over from the call before', async () => {
    const s = new OidcStrategy();
    const other = cluster({ 'kubernetes.io/oidc-token-provider': 'other' });
    const bearer = (token) => ({ type: 'bearer token', token });
    await expect(s.getCredential(oidc, { oidc: { okta: 'alice-LEAKCANARY' } })).resolves.toStrictEqual(bearer('alice-LEAKCANARY'));
    await expect(s.getCredential(other, { oidc: { okta: 'alice-LEAKCANARY' } })).rejects.toThrow(
      'Auth token not found under oidc.other in request body',
    );
    await expect(s.getCredential(oidc, {})).rejects.toThrow('Auth token not found under oidc.okta in request body');
    await expect(s.getCredential(oidc, { oidc: { okta: 5 } })).rejects.toThrow(TypeError);
    await expect(s.getCredential(oidc, { oidc: { okta: 'bob-LEAKCANARY' } })).resolves.toStrictEqual(bearer('bob-LEAKCANARY'));
    const aks = new AksStrategy();
    await expect(aks.getCredential(cluster(), { aks: 'alice-LEAKCANARY' })).resolves.toStrictEqual(bearer('alice-LEAKCANARY'));
    await expect(aks.getCredential(cluster(), {})).resolves.toStrictEqual({ type: 'anonymous' });
    await expect(aks.getCredential(cluster(), { aks: 'bob-LEAKCANARY' })).resolves.toStrictEqual(bearer('bob-LEAKCANARY'));
  });

  it("reads only the named provider's token", async () => {
    // Another provider's entry that cannot be read (a throwing getter) is none of our business.
    const byProvider = { okta: 'okta-token-LEAKCANARY' };
    Object.defineProperty(byProvider, 'other', {
      enumerable: true,
      get() {
        throw new Error('read other');
      },
    });
    await expect(new OidcStrategy().getCredential(oidc, { oidc: byProvider })).resolves.toStrictEqual({
      type: 'bearer token',
      token: 'okta-token-LEAKCANARY',
    });
    await expect(new OidcStrategy().getCredential(oidc, { oidc: { okta: 5 } })).rejects.toThrow(
      new TypeError('requestAuth.oidc.okta must be a string'),
    );
  });

  it('reports a non-string token provider instead of looking it up', async () => {
    const bad = { 'kubernetes.io/oidc-token-provider': 7 };
    expect(new OidcStrategy().validateCluster(bad)[0]).toBeInstanceOf(TypeError);
    await expect(new OidcStrategy().getCredential(cluster(bad), { oidc: { 7: 'x' } })).rejects.toThrow(
      "clusterDetails.authMetadata['kubernetes.io/oidc-token-provider'] must be a string",
    );
  });
});

describe('ServiceAccountStrategy', () => {
  let dir;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sa-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reads bearer token from config', async () => {
    await expect(
      new ServiceAccountStrategy().getCredential(cluster({ serviceAccountToken: 'from config' }), {}),
    ).resolves.toStrictEqual({ type: 'bearer token', token: 'from config' });
  });

  it('reads in-cluster token verbatim when serviceAccountToken is absent', async () => {
    const tokenPath = path.join(dir, 'token');
    fs.writeFileSync(tokenPath, 'in-cluster-token-LEAKCANARY\n');
    await expect(new ServiceAccountStrategy({ tokenPath }).getCredential(cluster(), {})).resolves.toStrictEqual({
      type: 'bearer token',
      token: 'in-cluster-token-LEAKCANARY\n',
    });
  });

  it('re-reads the rotated token file only after the reload interval', async () => {
    const tokenPath = path.join(dir, 'token');
    fs.writeFileSync(tokenPath, 'first');
    const s = new ServiceAccountStrategy({ tokenPath, reloadIntervalMs: 300 });
    const token = async () => (await s.getCredential(cluster(), {})).token;
    expect(await token()).toBe('first');
    fs.writeFileSync(tokenPath, 'rotated');
    expect(await token()).toBe('first');
    await new Promise((r) => setTimeout(r, 350));
    expect(await token()).toBe('rotated');
  });

  it('keeps the last good token when a re-read fails', async () => {
    const tokenPath = path.join(dir, 'token');
    fs.writeFileSync(tokenPath, 'good');
    const s = new ServiceAccountStrategy({ tokenPath, reloadIntervalMs: 0 });
    expect((await s.getCredential(cluster(), {})).token).toBe('good');
    fs.rmSync(tokenPath);
    expect((await s.getCredential(cluster(), {})).token).toBe('good');
  });

  it('with cache: false reads the file on every call, as Backstage does', async () => {
    const tokenPath = path.join(dir, 'token');
    fs.writeFileSync(tokenPath, 'a');
    const s = new ServiceAccountStrategy({ tokenPath, cache: false });
    expect((await s.getCredential(cluster(), {})).token).toBe('a');
    fs.writeFileSync(tokenPath, 'b');
    expect((await s.getCredential(cluster(), {})).token).toBe('b');
    fs.rmSync(tokenPath);
    await expect(s.getCredential(cluster(), {})).rejects.toThrow(/cannot read token file/);
  });

  it('rejects with an Error naming the file when there is no token at all', async () => {
    const tokenPath = path.join(dir, 'missing');
    const p = new ServiceAccountStrategy({ tokenPath }).getCredential(cluster(), {});
    await expect(p).rejects.toThrow(Error);
    await expect(p).rejects.toThrow(`serviceAccount: cannot read token file ${tokenPath}: No such file or directory`);
  });

  it('shares one read between concurrent callers', async () => {
    const tokenPath = path.join(dir, 'token');
    fs.writeFileSync(tokenPath, 'shared');
    const s = new ServiceAccountStrategy({ tokenPath });
    const results = await Promise.all(Array.from({ length: 500 }, () => s.getCredential(cluster(), {})));
    expect(new Set(results.map((r) => r.token))).toEqual(new Set(['shared']));
  });

  it('validates option types', () => {
    expect(() => new ServiceAccountStrategy({ tokenPath: 5 })).toThrow(new TypeError('options.tokenPath must be a string'));
    expect(() => new ServiceAccountStrategy({ cache: 'no' })).toThrow(new TypeError('options.cache must be a boolean'));
    expect(() => new ServiceAccountStrategy({ reloadIntervalMs: -1 })).toThrow(TypeError);
    expect(() => new ServiceAccountStrategy('path')).toThrow(new TypeError('options must be an object'));
  });
});

describe('DispatchStrategy', () => {
  const mockStrategy = () => ({
    getCredential: jest.fn().mockResolvedValue({ type: 'bearer token', token: 'from-mock-LEAKCANARY' }),
    validateCluster: jest.fn().mockReturnValue([]),
    presentAuthMetadata: jest.fn().mockReturnValue({}),
  });

  it('gets credential if specified auth provider is in the strategy map', async () => {
    const google = mockStrategy();
    const dispatch = new DispatchStrategy({ authStrategyMap: { google } });
    const cd = cluster({ 'kubernetes.io/auth-provider': 'google' });
    const auth = { google: 'token' };
    await expect(dispatch.getCredential(cd, auth)).resolves.toStrictEqual({ type: 'bearer token', token: 'from-mock-LEAKCANARY' });
    expect(google.getCredential).toHaveBeenCalledTimes(1);
    expect(google.getCredential.mock.calls[0][0]).toBe(cd);
    expect(google.getCredential.mock.calls[0][1]).toBe(auth);
    expect(google.getCredential.mock.contexts[0]).toBe(google);
  });

  it('dispatches to native and JS strategies alike', async () => {
    const dispatch = new DispatchStrategy({
      authStrategyMap: { aks: new AksStrategy(), custom: mockStrategy() },
    });
    await expect(
      dispatch.getCredential(cluster({ 'kubernetes.io/auth-provider': 'aks' }), { aks: 'a' }),
    ).resolves.toStrictEqual({ type: 'bearer token', token: 'a' });
    await expect(
      dispatch.getCredential(cluster({ 'kubernetes.io/auth-provider': 'custom' }), {}),
    ).resolves.toStrictEqual({ type: 'bearer token', token: 'from-mock-LEAKCANARY' });
    const oidcDispatch = new DispatchStrategy({ authStrategyMap: { oidc: new OidcStrategy() } });
    const errors = oidcDispatch.validateCluster({ 'kubernetes.io/auth-provider': 'oidc' });
    expect(errors).toEqual([new Error("Must specify a token provider for 'oidc' strategy")]);
    expect(errors[0]).toBeInstanceOf(Error);
  });

  it('throws an error when asked for a strategy for an unsupported auth type', () => {
    const dispatch = new DispatchStrategy({ authStrategyMap: {} });
    expect(() => dispatch.getCredential(cluster({ 'kubernetes.io/auth-provider': 'linode' }), {})).toThrow(
      new Error('authProvider "linode" has no AuthenticationStrategy associated with it'),
    );
    expect(() => dispatch.getCredential(cluster({}), {})).toThrow(
      'authProvider "undefined" has no AuthenticationStrategy associated with it',
    );
  });

  it('reports an unknown provider from validateCluster', () => {
    const dispatch = new DispatchStrategy({ authStrategyMap: { aks: new AksStrategy() } });
    const errors = dispatch.validateCluster({ 'kubernetes.io/auth-provider': 'linode' });
    expect(errors).toEqual([new Error('authProvider "linode" has no config associated with it')]);
    expect(errors[0]).toBeInstanceOf(Error);
    expect(dispatch.validateCluster({ 'kubernetes.io/auth-provider': 'aks' })).toEqual([]);
    expect(dispatch.presentAuthMetadata({ 'kubernetes.io/auth-provider': 'aks' })).toEqual({});
  });

  it('does not find prototype members as strategies', () => {
    const dispatch = new DispatchStrategy({ authStrategyMap: { aks: new AksStrategy() } });
    for (const provider of ['toString', '__proto__', 'constructor', 'hasOwnProperty']) {
      expect(() => dispatch.getCredential(cluster({ 'kubernetes.io/auth-provider': provider }), {})).toThrow(
        `authProvider "${provider}" has no AuthenticationStrategy associated with it`,
      );
    }
  });

  it('reads only the auth-provider annotation to choose', async () => {
    const authMetadata = { 'kubernetes.io/auth-provider': 'aks' };
    Object.defineProperty(authMetadata, 'unrelated', {
      enumerable: true,
      get() {
        throw new Error('read unrelated');
      },
    });
    const dispatch = new DispatchStrategy({ authStrategyMap: { aks: new AksStrategy() } });
    await expect(dispatch.getCredential({ name: 'c', url: 'https://c', authMetadata }, { aks: 'a-LEAKCANARY' })).resolves.toStrictEqual({
      type: 'bearer token',
      token: 'a-LEAKCANARY',
    });
  });

  it('names a strategy whose getCredential stopped being a function', async () => {
    const custom = mockStrategy();
    const dispatch = new DispatchStrategy({ authStrategyMap: { custom } });
    custom.getCredential = 'no longer';
    await expect(
      (async () => dispatch.getCredential(cluster({ 'kubernetes.io/auth-provider': 'custom' }), {}))(),
    ).rejects.toThrow(new TypeError("the strategy's getCredential must be a function"));
  });

  it('passes a JS strategy rejection through unchanged', async () => {
    const failing = mockStrategy();
    const reason = new Error('custom failure');
    failing.getCredential.mockRejectedValue(reason);
    const dispatch = new DispatchStrategy({ authStrategyMap: { failing } });
    await expect(dispatch.getCredential(cluster({ 'kubernetes.io/auth-provider': 'failing' }), {})).rejects.toBe(reason);
  });

  it('refuses a map entry that is not a strategy', () => {
    expect(() => new DispatchStrategy({ authStrategyMap: { bad: 5 } })).toThrow(
      new TypeError('options.authStrategyMap.bad must be an AuthenticationStrategy (an object with a getCredential method)'),
    );
    expect(() => new DispatchStrategy({})).toThrow(new TypeError('options.authStrategyMap must be an object'));
    expect(() => new DispatchStrategy()).toThrow(new TypeError('options must be an object'));
  });
});
