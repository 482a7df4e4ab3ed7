'use strict';
// fast-check generators of junk for every argument kind the fuzzer knows. Each kind mixes
// plausible shapes (so deep code paths are reached) with anything at all: wrong types,
// null/undefined, deep nesting, 1 MB strings, lone surrogates, `__proto__`/`constructor`
// keys, arrays for objects, huge numbers, getters and proxies that throw, cycles.

const fc = require('fast-check');

const MB = 1 << 20;
const BIG = ['x'.repeat(MB), '\ud800'.repeat(MB / 2), 'é'.repeat(MB / 2), 'https://' + 'a'.repeat(MB)];
const SPECIAL_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', 'then'];

function deep(levels, leaf) {
  let v = leaf;
  for (let i = 0; i < levels; i++) v = i % 2 ? [v] : { deep: v };
  return v;
}

function cyclic() {
  const o = { a: 1 };
  o.self = o;
  o.list = [o];
  return o;
}

const throwingProxy = () =>
  new Proxy(
    {},
    {
      get() {
        throw new Error('proxy trap');
      },
      ownKeys() {
        throw new Error('proxy trap');
      },
      has() {
        throw new Error('proxy trap');
      },
      getOwnPropertyDescriptor() {
        throw new Error('proxy trap');
      },
    },
  );

const primitive = fc.oneof(
  fc.constantFrom(undefined, null, NaN, Infinity, -Infinity, -0, 0, -1, 2 ** 53, 2 ** 64, 1e308, Number.MIN_VALUE, true, false, '', ' ', '\0', '\ud800', '\udfff\ud800', '%00', '../../etc/passwd', 'null', '{}'),
  fc.integer(),
  fc.double(),
  fc.bigInt(),
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.constantFrom(...BIG),
);

// fast-check inspects and prints what it generates, so hostile values are generated as
// descriptors (Exotic, Obj) and made real by `materialize` just before the call.
class Exotic {
  constructor(index) {
    this.exotic = index;
  }
}
class Obj {
  constructor(entries, throwingGetterAt) {
    this.entries = entries;
    this.throwingGetterAt = throwingGetterAt;
  }
}

const EXOTIC = [
  () => deep(3000, 'bottom'),
  () => deep(40, { leaf: 'x' }),
  cyclic,
  throwingProxy,
  () => Symbol('s'),
  () => () => 'a function',
  () => new Date(NaN),
  () => new Date(0),
  () => Buffer.from('buffer'),
  () => new Uint8Array(4),
  () => new Map([['a', 1]]),
  () => Promise.resolve('a promise'),
  () => Object.create(null),
  () => new (class Weird {})(),
  () => new Error('an error as input'),
  () => Object.freeze({ frozen: true }),
  () => Array(1000).fill('x'),
];
const exotic = fc.nat(EXOTIC.length - 1).map((i) => new Exotic(i));

function materialize(v) {
  if (v instanceof Exotic) return EXOTIC[v.exotic]();
  if (v instanceof Obj) return objectOf(v.entries.map(([k, x]) => [k, materialize(x)]), v.throwingGetterAt);
  if (Array.isArray(v)) return v.map(materialize);
  return v;
}

/** An object with `entries`, written with defineProperty so `__proto__` is an own key. */
function objectOf(entries, throwingGetterAt) {
  const o = {};
  entries.forEach(([k, v], i) => {
    if (i === throwingGetterAt) {
      Object.defineProperty(o, k, {
        enumerable: true,
        configurable: true,
        get() {
          throw new Error('getter throws');
        },
      });
    } else {
      Object.defineProperty(o, k, { value: v, enumerable: true, configurable: true, writable: true });
    }
  });
  return o;
}

/** Objects whose keys come from `keys` (plus junk keys), values from `value`. */
function objectArb(keys, value, maxKeys = 6) {
  const key = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...keys) }, { weight: 1, arbitrary: fc.constantFrom(...SPECIAL_KEYS) }, { weight: 1, arbitrary: fc.string() });
  return fc
    .tuple(fc.array(fc.tuple(key, value), { maxLength: maxKeys }), fc.option(fc.nat(maxKeys), { freq: 8 }))
    .map(([entries, at]) => new Obj(entries, at ?? -1));
}

const { anything } = fc.letrec((tie) => ({
  anything: fc.oneof(
    { weight: 5, arbitrary: primitive },
    { weight: 1, arbitrary: exotic },
    { weight: 2, arbitrary: fc.array(tie('anything'), { maxLength: 4 }) },
    { weight: 2, arbitrary: objectArb(['a', 'b', 'name', 'url'], tie('anything'), 4) },
  ),
}));

/** Mostly the kind asked for; sometimes anything at all. */
const or = (arb) => fc.oneof({ weight: 4, arbitrary: arb }, { weight: 1, arbitrary: anything });
const stringish = or(fc.oneof(fc.string(), fc.constantFrom('okta', 'aks', 'google', 'c', 'arn:aws:iam::123456789012:role/r', 'us-east-1', '')));
const URLS = ['https://127.0.0.1:1', 'http://127.0.0.1:1', 'https://unresolvable.invalid', 'https://127.0.0.1:1/path?x=1', 'not a url', '', 'file:///etc/passwd', 'https://[::1', 'https://127.0.0.1:99999'];

const ANNOTATIONS = [
  'kubernetes.io/auth-provider',
  'kubernetes.io/oidc-token-provider',
  'kubernetes.io/aws-assume-role',
  'kubernetes.io/aws-external-id',
  'kubernetes.io/x-k8s-aws-id',
  'kubernetes.io/aws-account-id',
  'kubernetes.io/api-server',
  'kubernetes.io/api-server-certificate-authority',
];
const PROVIDERS = ['aks', 'aws', 'google', 'oidc', 'serviceAccount', 'localKubectlProxy', 'pinniped', 'azure', 'nope', '__proto__', 'toString'];
const annotationValue = or(fc.oneof(fc.constantFrom(...PROVIDERS, 'okta', 'arn:aws:iam::123456789012:role/r', 'arn:bad', '123456789012'), fc.string()));

const kinds = {
  authMetadata: or(objectArb(ANNOTATIONS, annotationValue, 6)),
  clusterDetails: or(
    objectArb(
      ['name', 'url', 'authMetadata', 'caData', 'caFile', 'skipTLSVerify', 'skipMetricsLookup', 'serviceAccountToken'],
      or(fc.oneof(fc.constantFrom(...URLS), objectArb(ANNOTATIONS, annotationValue, 6), fc.boolean(), fc.constantFrom('bm90IGEgY2VydA==', '/nonexistent/ca.pem', ''))),
      6,
    ),
  ),
  requestAuth: or(
    objectArb(
      ['aks', 'google', 'oidc', 'pinniped', 'serviceAccount'],
      or(fc.oneof(stringish, objectArb(['okta', 'clusteridtoken', 'clusterScopedIdToken', '__proto__'], stringish, 3))),
      4,
    ),
  ),
  pinnipedParams: or(
    objectArb(
      ['clusterScopedIdToken', 'authenticator', 'tokenCredentialRequest'],
      or(fc.oneof(stringish, objectArb(['apiGroup', 'kind', 'name'], stringish, 3))),
      3,
    ),
  ),
  presignOptions: or(
    objectArb(
      ['clusterId', 'region', 'credentials', 'signingTime'],
      or(fc.oneof(stringish, fc.integer(), fc.date(), objectArb(['accessKeyId', 'secretAccessKey', 'sessionToken'], stringish, 3))),
      4,
    ),
  ),
  options: or(
    objectArb(
      ['timeoutMs', 'cache', 'cacheSize', 'tokenPath', 'reloadIntervalMs', 'authenticator', 'tokenCredentialRequestApiGroup', 'authStrategyMap', 'config', 'tokenCacheSeconds', 'logger'],
      or(
        fc.oneof(
          fc.integer(),
          fc.boolean(),
          stringish,
          objectArb(['aws', 'apiGroup', 'kind', 'name', 'aks', 'oidc'], objectArb(['mainAccount', 'accounts', 'accountDefaults', 'accessKeyId', 'secretAccessKey', 'roleName', 'accountId', 'profile', 'region'], anything, 4), 3),
        ),
      ),
      5,
    ),
  ),
};

module.exports = { kinds, anything, materialize, fc };
