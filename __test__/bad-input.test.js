'use strict';
// Every method of every class with junk arguments: no crash, no hang, no non-Error rejection;
// type errors name the field. Errors are of this (Jest vm) realm: `instanceof Error` holds.

const native = require('..');

const {
  AksStrategy,
  AnonymousStrategy,
  AzureIdentityStrategy,
  DispatchStrategy,
  GoogleStrategy,
  MicrosoftEntraIdStrategy,
  OidcStrategy,
  PinnipedStrategy,
  ServiceAccountStrategy,
} = native;

function junk() {
  const cyclic = { a: 1 };
  cyclic.self = cyclic;
  let deep = 'bottom';
  for (let i = 0; i < 2000; i++) deep = { deep };
  const throwingProxy = new Proxy(
    {},
    {
      get() {
        throw new Error('trap');
      },
      ownKeys() {
        throw new Error('trap');
      },
    },
  );
  const getterThrows = Object.defineProperty({}, 'aks', {
    enumerable: true,
    get() {
      throw new Error('getter');
    },
  });
  return [
    undefined,
    null,
    0,
    -1,
    NaN,
    Infinity,
    '',
    'x',
    'x'.repeat(1 << 20),
    '\ud800\udfff\ud800',
    true,
    [],
    [1, 'two', null],
    {},
    Object.create(null),
    JSON.parse('{"__proto__": {"aks": "polluted"}, "constructor": {"prototype": 1}}'),
    cyclic,
    deep,
    throwingProxy,
    getterThrows,
    () => 'fn',
    Symbol('s'),
    10n,
    new Date(0),
    Buffer.from('buf'),
    { authMetadata: cyclic, name: 1, url: [] },
    { authMetadata: { 'kubernetes.io/oidc-token-provider': { nested: deep } } },
    { aks: cyclic, google: deep, oidc: throwingProxy },
  ];
}

async function settle(fn) {
  try {
    const out = fn();
    if (out && typeof out.then === 'function') {
      return { value: await out };
    }
    return { value: out };
  } catch (error) {
    return { error };
  }
}

const classes = {
  AksStrategy: () => new AksStrategy(),
  AnonymousStrategy: () => new AnonymousStrategy(),
  GoogleStrategy: () => new GoogleStrategy(),
  OidcStrategy: () => new OidcStrategy(),
  ServiceAccountStrategy: () => new ServiceAccountStrategy({ tokenPath: '/nonexistent/token', timeoutMs: 2000 }),
  PinnipedStrategy: () => new PinnipedStrategy({ timeoutMs: 2000 }),
  DispatchStrategy: () =>
    new DispatchStrategy({ authStrategyMap: { aks: new AksStrategy(), oidc: new OidcStrategy() } }),
};

describe.each(Object.entries(classes))('%s with junk input', (_name, make) => {
  const strategy = make();

  it('getCredential settles with a credential or an Error for every input pair', async () => {
    const values = junk();
    for (const cd of values) {
      for (const auth of [undefined, {}, values[16], values[18], values[20], values[27], 'str', 5]) {
        const r = await settle(() => strategy.getCredential(cd, auth));
        if (r.error !== undefined) {
          expect(r.error).toBeInstanceOf(Error);
          expect(r.error.message.length).toBeGreaterThan(0);
        } else {
          expect(['bearer token', 'anonymous', 'x509 client certificate']).toContain(r.value.type);
        }
      }
    }
  });

  it('validateCluster returns Errors or throws a TypeError; presentAuthMetadata returns an object or throws', async () => {
    for (const md of junk()) {
      const v = await settle(() => strategy.validateCluster(md));
      if (v.error) {
        expect(v.error).toBeInstanceOf(TypeError);
        expect(v.error.message).toMatch(/authMetadata/);
      } else {
        expect(Array.isArray(v.value)).toBe(true);
        v.value.forEach((e) => expect(e).toBeInstanceOf(Error));
      }
      const p = await settle(() => strategy.presentAuthMetadata(md));
      if (p.error) {
        expect(p.error).toBeInstanceOf(TypeError);
      } else {
        expect(typeof p.value).toBe('object');
      }
    }
  });
});

describe('field names in type errors', () => {
  it('names the clusterDetails field', async () => {
    const oidc = new OidcStrategy();
    await expect(oidc.getCredential(5, {})).rejects.toThrow(new TypeError('clusterDetails must be an object'));
    await expect(oidc.getCredential({ authMetadata: 'x' }, {})).rejects.toThrow(
      new TypeError('clusterDetails.authMetadata must be an object'),
    );
    const cyclic = {};
    cyclic.loop = cyclic;
    await expect(
      oidc.getCredential({ authMetadata: { 'kubernetes.io/oidc-token-provider': cyclic } }, {}),
    ).rejects.toThrow(/^clusterDetails\.authMetadata\['kubernetes\.io\/oidc-token-provider'\]\.loop\.loop.* must be JSON data at most 16 levels deep/);
  });

  it('names the requestAuth field', async () => {
    await expect(new AksStrategy().getCredential({}, 'not-an-object')).rejects.toThrow(
      new TypeError('requestAuth must be an object'),
    );
    await expect(new GoogleStrategy().getCredential({}, { google: 10n })).rejects.toThrow(
      new TypeError('requestAuth.google must be JSON data (not a BigInt)'),
    );
    await expect(
      new OidcStrategy().getCredential(
        { authMetadata: { 'kubernetes.io/oidc-token-provider': 'okta' } },
        { oidc: { okta: ['a'] } },
      ),
    ).rejects.toThrow(new TypeError('requestAuth.oidc.okta must be a string'));
  });

  it('a throwing getter becomes a field error, not the getter exception', async () => {
    const auth = Object.defineProperty({}, 'aks', {
      enumerable: true,
      get() {
        throw new Error('secret-getter-message');
      },
    });
    await expect(new AksStrategy().getCredential({}, auth)).rejects.toThrow(new TypeError('requestAuth.aks must be readable'));
  });

  it('a 1 MB token passes through intact', async () => {
    const token = 't'.repeat(1 << 20);
    const c = await new AksStrategy().getCredential({}, { aks: token });
    expect(c.token).toBe(token);
  });

  it('a polluted __proto__ key does not leak into lookups', async () => {
    const auth = JSON.parse('{"__proto__": {"aks": "polluted"}}');
    await expect(new AksStrategy().getCredential({}, auth)).resolves.toStrictEqual({ type: 'anonymous' });
  });
});

describe('constructors with junk options', () => {
  it('never crash; refuse non-objects with a TypeError', () => {
    for (const opts of junk()) {
      for (const make of [
        () => new ServiceAccountStrategy(opts),
        () => new DispatchStrategy(opts),
        () => new AksStrategy(opts),
        () => new PinnipedStrategy(opts),
        () => new AzureIdentityStrategy(opts),
        () => new MicrosoftEntraIdStrategy(opts),
      ]) {
        try {
          make();
        } catch (e) {
          expect(e).toBeInstanceOf(TypeError);
          expect(e.message).toMatch(/^options/);
        }
      }
    }
  });
});
