'use strict';
// The thin JS layer. It exists for two reasons only (see README, "Design"):
// 1. values must belong to the caller's JS realm: Jest runs each test file in a `vm` context,
//    where an Error made by native code fails `instanceof Error` and a native object is not
//    `toStrictEqual` to a literal. Every native instance gets these factories, evaluated
//    here, in the realm that loaded this module, and builds what it returns through them.
// 2. the Backstage backend module (`./module.js`).
// No strategy logic lives here.

const binding = require('./binding.js');

const realm = Object.freeze({
  makeError(message, isTypeError) {
    return isTypeError ? new TypeError(message) : new Error(message);
  },
  makeCredential(type, first, second) {
    if (type === 'bearer token') return { type, token: first };
    if (type === 'x509 client certificate') return { type, cert: first, key: second };
    return { type };
  },
  makeObject(entries) {
    return Object.fromEntries(entries);
  },
});

// The native side settles what it can without waiting and returns it as a primitive (see
// `bind` in src/node/native.rs); this wraps it in a promise of this realm. A number is the
// index of the read value that is the token (pass-through strategies).
function settled(result, values) {
  if (typeof result === 'string') return Promise.resolve({ type: 'bearer token', token: result });
  if (typeof result === 'number') return Promise.resolve({ type: 'bearer token', token: values[result] });
  if (result === null) return Promise.resolve({ type: 'anonymous' });
  if (Array.isArray(result)) {
    return Promise.resolve({ type: 'x509 client certificate', cert: result[0], key: result[1] });
  }
  return result;
}

const NONE = [];

// Reads the values a strategy's plan names (see `inputPlan` in src/node/native.rs), as the
// native side would, but through V8's inline caches: an N-API property read costs ~100 ns,
// this a few. Returns the values, or `undefined` for anything but strings and `undefined`
// (and for containers that are not objects, or a getter that throws): the native side then
// reads the objects itself and names what is wrong. No strategy logic: only reads.
function inputReader(plan) {
  if (plan.length === 0) return () => NONE;
  const FAIL = {};
  const value = (v) => (typeof v === 'string' || v === undefined ? v : FAIL);
  const inner = (o, key) => {
    if (o === undefined) return undefined;
    return typeof o === 'object' && o !== null ? value(o[key]) : FAIL;
  };
  const steps = plan.map(([kind, a, b]) => {
    switch (kind) {
      case 'name':
      case 'url':
        return (cd) => (typeof cd[kind] === 'string' ? cd[kind] : FAIL);
      case 'metadata':
        return (cd, md) => (md == null ? undefined : value(md[a]));
      case 'auth':
        return (cd, md, auth) => (auth == null ? undefined : value(auth[a]));
      case 'authInner':
        return (cd, md, auth) => (auth == null ? undefined : inner(auth[a], b));
      case 'authByMetadata':
        return (cd, md, auth) => {
          const key = md == null ? undefined : md[b];
          if (key === undefined || auth == null) return undefined;
          return typeof key === 'string' ? inner(auth[a], key) : FAIL;
        };
      default:
        throw new Error(`unknown input kind ${kind}`);
    }
  });
  const readsCluster = plan.some(([kind]) => kind !== 'auth' && kind !== 'authInner');
  const readsAuth = plan.some(([kind]) => kind.startsWith('auth'));
  return (cd, auth) => {
    try {
      let md;
      if (readsCluster) {
        if (typeof cd !== 'object' || cd === null) return undefined;
        md = cd.authMetadata;
        if (md != null && typeof md !== 'object') return undefined;
      }
      if (readsAuth && auth != null && typeof auth !== 'object') return undefined;
      const values = new Array(steps.length);
      for (let i = 0; i < steps.length; i++) {
        const v = steps[i](cd, md, auth);
        if (v === FAIL) return undefined;
        values[i] = v;
      }
      return values;
    } catch {
      return undefined;
    }
  };
}

class NativeStrategy extends binding.NativeStrategy {
  // This instance's native `credentialNow` (see `bind` in src/node/native.rs).
  #call;
  #read;
  // `options.now`: a clock (epoch ms) sampled before each call, so tests with fake timers
  // control expiry; the native side then measures that call's deadlines with the sample.
  #now;

  constructor(kind, options, realmFactories) {
    super(kind, options, realmFactories);
    let now;
    try {
      now = options?.now;
    } catch {
      // Unreadable (a throwing getter or proxy): absent, as the native side reads it.
    }
    if (typeof now === 'function') {
      this.#now = now;
      this.setNow(Number(now()));
    }
    this.#call = this.bind();
    this.#read = inputReader(this.inputPlan());
  }

  #credential(clusterDetails, requestAuth, values) {
    // `options.now()` travels with the call: one native call, not two.
    const now = this.#now === undefined ? undefined : Number(this.#now());
    if (values === undefined) return this.#call(clusterDetails, requestAuth, now);
    switch (values.length) {
      case 0:
        return this.#call(clusterDetails, requestAuth, now);
      case 1:
        return this.#call(clusterDetails, requestAuth, now, values[0]);
      case 2:
        return this.#call(clusterDetails, requestAuth, now, values[0], values[1]);
      default:
        return this.#call(clusterDetails, requestAuth, now, ...values);
    }
  }

  /** A token string, `null` (anonymous), `[cert, key]`, or a promise; throws on failure. */
  credentialNow(clusterDetails, requestAuth) {
    const values = this.#read(clusterDetails, requestAuth);
    const result = this.#credential(clusterDetails, requestAuth, values);
    return typeof result === 'number' ? values[result] : result;
  }

  getCredential(clusterDetails, requestAuth) {
    try {
      const values = this.#read(clusterDetails, requestAuth);
      return settled(this.#credential(clusterDetails, requestAuth, values), values);
    } catch (error) {
      return Promise.reject(error);
    }
  }
}

// A Backstage LoggerService as the `log(level, message, errorMessage?)` function the native
// side calls; the error becomes an Error of this realm, as Backstage's strategies pass one.
function logFunction(logger) {
  if (!logger || typeof logger.info !== 'function') return undefined;
  return (level, message, errorMessage) => {
    try {
      const log = logger[level];
      if (typeof log !== 'function') return undefined;
      if (errorMessage == null) log.call(logger, message);
      else log.call(logger, message, realm.makeError(errorMessage, false));
    } catch {
      // A throwing logger must not break token fetching.
    }
    return undefined;
  };
}

// An Azure TokenCredential as the `getToken(scope, timeoutMs)` function the native token cache
// calls: it resolves `{ token, expiresOnTimestamp }`, `{ error }` or `null`, and never rejects,
// so a failure reaches the cache as a value it can share, log and recover from.
function getTokenFunction(credential, field) {
  if (credential == null) return undefined;
  if (typeof credential.getToken !== 'function') {
    throw realm.makeError(`${field} must be a TokenCredential (an object with a getToken method)`, true);
  }
  return async (scope, timeoutMs) => {
    try {
      const t = await credential.getToken(scope, { requestOptions: { timeout: timeoutMs } });
      if (!t) return null;
      return { token: t.token, expiresOnTimestamp: t.expiresOnTimestamp };
    } catch (e) {
      return { error: typeof e?.message === 'string' ? e.message : String(e) };
    }
  };
}

const isLogger = (v) => typeof v?.info === 'function' && typeof v?.error === 'function';

// Runs `read` over constructor arguments; anything but an object, or an object that cannot be
// read (a throwing getter or proxy), is refused with a TypeError naming the options.
function readOptions(first, read) {
  if (first != null && typeof first !== 'object') throw realm.makeError('options must be an object', true);
  try {
    return read();
  } catch (e) {
    if (e instanceof TypeError || e?.constructor?.name === 'TypeError') throw e;
    throw realm.makeError(`options cannot be read: ${e?.message ?? e}`, true);
  }
}

// The options both Azure strategies share. A JS credential's `expiresOnTimestamp` is on JS's
// clock (`Date.now()`, faked by Jest's timers), so the cache reads that clock too by default.
function azureCommon(opts, credential, field) {
  const getToken = getTokenFunction(credential, field);
  return {
    timeoutMs: opts.timeoutMs,
    failureBackoffMs: opts.failureBackoffMs,
    cache: opts.cache,
    env: opts.env,
    log: logFunction(opts.logger),
    getToken,
    now: opts.now ?? (getToken ? () => Date.now() : undefined),
  };
}

/**
 * Backstage's `new AzureIdentityStrategy(logger, tokenCredential?)`, or
 * `new AzureIdentityStrategy({ logger?, tokenCredential?, now?, timeoutMs?, failureBackoffMs?,
 * cache?, env? })`.
 */
class AzureIdentityStrategy extends NativeStrategy {
  constructor(first, tokenCredential) {
    const options = readOptions(first, () => {
      const opts = isLogger(first) ? { logger: first, tokenCredential } : (first ?? {});
      return azureCommon(opts, opts.tokenCredential, 'tokenCredential');
    });
    super('azure', options, realm);
  }
}

// A value of Backstage `Config` or of its plain JSON, by dotted path.
function configValue(config, path) {
  if (!config) return undefined;
  if (typeof config.getOptional === 'function') return config.getOptional(path);
  return path.split('.').reduce((v, k) => (v && typeof v === 'object' ? v[k] : undefined), config);
}

/**
 * The Backstage pull request's `new MicrosoftEntraIdStrategy(logger, { config }, tokenCredential?)`,
 * or `new MicrosoftEntraIdStrategy({ logger?, config?, tokenCredential?, scope?, tenantId?,
 * clientId?, clientSecret?, authorityHost?, now?, timeoutMs?, failureBackoffMs?, cache?, env? })`.
 * From `config`: `auth.providers.microsoft.<NODE_ENV>.{tenantId,clientId,clientSecret}` and the
 * default scope `kubernetes.auth.providers.microsoft.<NODE_ENV>.scope`, as that pull request.
 */
class MicrosoftEntraIdStrategy extends NativeStrategy {
  constructor(first, second, tokenCredential) {
    const options = readOptions(first, () => {
      const opts = isLogger(first) ? { ...second, logger: first, tokenCredential } : (first ?? {});
      const env = process.env.NODE_ENV || 'development';
      const fromConfig = (path) => configValue(opts.config, path);
      const app = `auth.providers.microsoft.${env}`;
      return {
        ...azureCommon(opts, opts.tokenCredential, 'tokenCredential'),
        scope: opts.scope ?? fromConfig(`kubernetes.auth.providers.microsoft.${env}.scope`),
        tenantId: opts.tenantId ?? fromConfig(`${app}.tenantId`),
        clientId: opts.clientId ?? fromConfig(`${app}.clientId`),
        clientSecret: opts.clientSecret ?? fromConfig(`${app}.clientSecret`),
        authorityHost: opts.authorityHost,
      };
    });
    super('microsoftEntraId', options, realm);
  }
}

class AksStrategy extends NativeStrategy {
  constructor(options) {
    super('aks', options, realm);
  }
}

// What this layer reads itself must fail as the native side does: a getter or proxy that
// throws becomes an error naming the field, not the getter's own exception.
function readable(read, field) {
  try {
    return read();
  } catch {
    throw realm.makeError(`${field} must be readable`, true);
  }
}

// Backstage constructs it as `new AwsIamStrategy({ config })` with its root `Config`; we also
// accept the plain JSON of the root config. Only the JSON of the `aws` key goes to native.
function awsOptions(options) {
  const config = readable(() => options?.config, 'options.config');
  const aws = readable(
    () => (typeof config?.getOptional === 'function' ? config.getOptional('aws') : config?.aws),
    'options.config.aws',
  );
  return {
    aws,
    tokenCacheSeconds: readable(() => options?.tokenCacheSeconds, 'options.tokenCacheSeconds'),
    timeoutMs: readable(() => options?.timeoutMs, 'options.timeoutMs'),
    cache: readable(() => options?.cache, 'options.cache'),
  };
}

class AwsIamStrategy extends NativeStrategy {
  constructor(options) {
    super('aws', awsOptions(options), realm);
  }
}

/** The EKS token for fixed inputs; `signingTime` may be a `Date` or epoch milliseconds. */
function presignEksToken(options) {
  let input = options;
  const signingTime = readable(() => options?.signingTime, 'options.signingTime');
  // `toString` reads `Symbol.toStringTag`, which a proxy can make throw.
  const isDate = readable(() => Object.prototype.toString.call(signingTime) === '[object Date]', 'options.signingTime');
  if (isDate) {
    input = {
      clusterId: readable(() => options.clusterId, 'options.clusterId'),
      region: readable(() => options.region, 'options.region'),
      credentials: readable(() => options.credentials, 'options.credentials'),
      signingTime: readable(() => signingTime.getTime(), 'options.signingTime'),
    };
  }
  try {
    return binding.presignEksToken(input);
  } catch (e) {
    throw realm.makeError(e.message, e.code === 'InvalidArg');
  }
}

class AnonymousStrategy extends NativeStrategy {
  constructor(options) {
    super('localKubectlProxy', options, realm);
  }
}

class GoogleStrategy extends NativeStrategy {
  constructor(options) {
    super('google', options, realm);
  }
}

// Backstage constructs it as `new GoogleServiceAccountStrategy({ config })` and reads the
// JSON string `kubernetes.googleServiceAccountCredentials`; we also accept the plain JSON of
// the root config, or `credentials` directly. Only that string goes to native.
function googleServiceAccountOptions(options) {
  const config = options?.config;
  const credentials =
    options?.credentials ??
    (typeof config?.getOptionalString === 'function'
      ? config.getOptionalString('kubernetes.googleServiceAccountCredentials')
      : config?.kubernetes?.googleServiceAccountCredentials);
  return {
    credentials,
    timeoutMs: options?.timeoutMs,
    cache: options?.cache,
    metadataHost: options?.metadataHost,
  };
}

class GoogleServiceAccountStrategy extends NativeStrategy {
  constructor(options) {
    super('googleServiceAccount', googleServiceAccountOptions(options), realm);
  }
}

class OidcStrategy extends NativeStrategy {
  constructor(options) {
    super('oidc', options, realm);
  }
}

class ServiceAccountStrategy extends NativeStrategy {
  constructor(options) {
    super('serviceAccount', options, realm);
  }
}

class PinnipedStrategy extends NativeStrategy {
  constructor(options) {
    super('pinniped', options, realm);
  }
}

/**
 * Backstage's `PinnipedHelper`: `tokenCredentialRequest(clusterDetails, pinnipedParams)`.
 * The logger argument is accepted for compatibility; failures are reported by rejection.
 */
class PinnipedHelper extends binding.PinnipedHelper {
  constructor(_logger, options) {
    super(options, realm);
  }
}

class DispatchStrategy extends binding.DispatchStrategy {
  // The native choice as a function of its own, and the strategies it picks from by index
  // (see `chooser` in src/node/dispatch.rs).
  #choose;
  #strategies;

  constructor(options) {
    super(options, realm);
    this.#choose = this.chooser();
    this.#strategies = this.strategies();
  }

  getCredential(clusterDetails, requestAuth) {
    // Throws synchronously when no strategy matches, as Backstage's does. A string annotation
    // is read here (see `inputReader`); anything else the native side reads and names.
    let provider;
    try {
      provider = clusterDetails.authMetadata['kubernetes.io/auth-provider'];
    } catch {
      provider = undefined;
    }
    const strategy = this.#strategies[this.#choose(clusterDetails, typeof provider === 'string' ? provider : undefined)];
    const getCredential = strategy.getCredential;
    if (typeof getCredential !== 'function') return super.getCredential(clusterDetails, requestAuth);
    return getCredential.call(strategy, clusterDetails, requestAuth);
  }
}

/** Backstage registration names → our classes, for every name we implement natively. */
const strategyClasses = Object.freeze({
  aks: AksStrategy,
  aws: AwsIamStrategy,
  azure: AzureIdentityStrategy,
  google: GoogleStrategy,
  googleServiceAccount: GoogleServiceAccountStrategy,
  localKubectlProxy: AnonymousStrategy,
  microsoftEntraId: MicrosoftEntraIdStrategy,
  oidc: OidcStrategy,
  pinniped: PinnipedStrategy,
  serviceAccount: ServiceAccountStrategy,
});

/** Backstage's default names that have no native strategy yet. */
const notYetNative = Object.freeze([]);

module.exports = {
  AksStrategy,
  AnonymousStrategy,
  AwsIamStrategy,
  AzureIdentityStrategy,
  GoogleStrategy,
  GoogleServiceAccountStrategy,
  MicrosoftEntraIdStrategy,
  OidcStrategy,
  PinnipedHelper,
  PinnipedStrategy,
  ServiceAccountStrategy,
  DispatchStrategy,
  strategyClasses,
  notYetNative,
  presignEksToken,
};
