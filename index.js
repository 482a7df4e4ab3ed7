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
// `settle` in src/node/native.rs); this wraps it in a promise of this realm.
function settled(result) {
  if (typeof result === 'string') return Promise.resolve({ type: 'bearer token', token: result });
  if (result === null) return Promise.resolve({ type: 'anonymous' });
  if (Array.isArray(result)) {
    return Promise.resolve({ type: 'x509 client certificate', cert: result[0], key: result[1] });
  }
  return result;
}

class NativeStrategy extends binding.NativeStrategy {
  getCredential(clusterDetails, requestAuth) {
    try {
      return settled(this.credentialNow(clusterDetails, requestAuth));
    } catch (error) {
      return Promise.reject(error);
    }
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
  if (Object.prototype.toString.call(signingTime) === '[object Date]') {
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
  constructor(options) {
    super(options, realm);
  }
}

/** Backstage registration names → our classes, for every name we implement natively. */
const strategyClasses = Object.freeze({
  aks: AksStrategy,
  aws: AwsIamStrategy,
  google: GoogleStrategy,
  localKubectlProxy: AnonymousStrategy,
  oidc: OidcStrategy,
  pinniped: PinnipedStrategy,
  serviceAccount: ServiceAccountStrategy,
});

/** Backstage's default names that have no native strategy yet. */
const notYetNative = Object.freeze(['azure', 'googleServiceAccount']);

module.exports = {
  AksStrategy,
  AnonymousStrategy,
  AwsIamStrategy,
  GoogleStrategy,
  OidcStrategy,
  PinnipedHelper,
  PinnipedStrategy,
  ServiceAccountStrategy,
  DispatchStrategy,
  strategyClasses,
  notYetNative,
  presignEksToken,
};
