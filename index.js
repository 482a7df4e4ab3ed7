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

const credentialNow = binding.credentialNow;

class NativeStrategy extends binding.NativeStrategy {
  // `[native state, ...property names]`, made once (see `handle` in src/node/native.rs).
  #handle = this.handle();

  /** A token string, `null` (anonymous), `[cert, key]`, or a promise; throws on failure. */
  credentialNow(clusterDetails, requestAuth) {
    return credentialNow(this.#handle, clusterDetails, requestAuth);
  }

  getCredential(clusterDetails, requestAuth) {
    try {
      return settled(credentialNow(this.#handle, clusterDetails, requestAuth));
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

// Backstage constructs it as `new AwsIamStrategy({ config })` with its root `Config`; we also
// accept the plain JSON of the root config. Only the JSON of the `aws` key goes to native.
function awsOptions(options) {
  const config = options?.config;
  const aws = typeof config?.getOptional === 'function' ? config.getOptional('aws') : config?.aws;
  return {
    aws,
    tokenCacheSeconds: options?.tokenCacheSeconds,
    timeoutMs: options?.timeoutMs,
    cache: options?.cache,
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
  if (options && Object.prototype.toString.call(options.signingTime) === '[object Date]') {
    input = { ...options, signingTime: options.signingTime.getTime() };
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
  constructor(options) {
    super(options, realm);
  }
}

/** Backstage registration names → our classes, for every name we implement natively. */
const strategyClasses = Object.freeze({
  aks: AksStrategy,
  aws: AwsIamStrategy,
  google: GoogleStrategy,
  googleServiceAccount: GoogleServiceAccountStrategy,
  localKubectlProxy: AnonymousStrategy,
  oidc: OidcStrategy,
  pinniped: PinnipedStrategy,
  serviceAccount: ServiceAccountStrategy,
});

/** Backstage's default names that have no native strategy yet. */
const notYetNative = Object.freeze(['azure']);

module.exports = {
  AksStrategy,
  AnonymousStrategy,
  AwsIamStrategy,
  GoogleStrategy,
  GoogleServiceAccountStrategy,
  OidcStrategy,
  PinnipedHelper,
  PinnipedStrategy,
  ServiceAccountStrategy,
  DispatchStrategy,
  strategyClasses,
  notYetNative,
  presignEksToken,
};
