// Public types of backstage-kubernetes-auth-native. They are structurally identical to
// `@backstage/plugin-kubernetes-node`'s, so every class here is assignable to its
// `AuthenticationStrategy` (checked by `npm run typecheck`) without depending on it.

export type AuthMetadata = Record<string, string>;

export type KubernetesRequestAuth = { [providerKey: string]: unknown };

export type KubernetesCredential =
  | { type: 'bearer token'; token: string }
  | { type: 'x509 client certificate'; cert: string; key: string }
  | { type: 'anonymous' };

/** The fields of Backstage's `ClusterDetails` that strategies read. */
export interface ClusterDetails {
  name: string;
  url: string;
  authMetadata: AuthMetadata;
  skipTLSVerify?: boolean;
  caData?: string | undefined;
  caFile?: string | undefined;
  [key: string]: unknown;
}

export interface AuthenticationStrategy {
  getCredential(
    clusterDetails: ClusterDetails,
    requestAuth: KubernetesRequestAuth,
  ): Promise<KubernetesCredential>;
  validateCluster(authMetadata: AuthMetadata): Error[];
  presentAuthMetadata(authMetadata: AuthMetadata): AuthMetadata;
}

/** Shared shape of every native strategy. */
declare abstract class NativeAuthenticationStrategy implements AuthenticationStrategy {
  /**
   * Resolves the credential. `requestAuth` may be `undefined` (read as `{}`).
   * Rejects with a `TypeError` naming the field when an input has the wrong type.
   */
  getCredential(
    clusterDetails: ClusterDetails,
    requestAuth?: KubernetesRequestAuth,
  ): Promise<KubernetesCredential>;
  validateCluster(authMetadata: AuthMetadata): Error[];
  presentAuthMetadata(authMetadata: AuthMetadata): AuthMetadata;
  /** The Backstage registration name this strategy implements. */
  readonly kind: string;
  /** How many derived credentials (e.g. Pinniped certificates) are cached right now. */
  readonly cachedEntries: number;
}

/** `aks`: bearer token from `requestAuth.aks`, anonymous without one. */
export declare class AksStrategy extends NativeAuthenticationStrategy {
  constructor();
}

/** `localKubectlProxy`: always anonymous. */
export declare class AnonymousStrategy extends NativeAuthenticationStrategy {
  constructor();
}

/** What `new AwsIamStrategy(...)` reads of a Backstage `Config` (or plain root config JSON). */
export interface AwsConfigSource {
  getOptional(key: string): unknown;
}

/** The root config's `aws` integration block (`@backstage/integration-aws-node`). */
export interface AwsIntegrationConfig {
  mainAccount?: { accessKeyId?: string; secretAccessKey?: string; profile?: string; region?: string };
  accounts?: Array<{
    accountId: string;
    accessKeyId?: string;
    secretAccessKey?: string;
    profile?: string;
    roleName?: string;
    region?: string;
    partition?: string;
    externalId?: string;
    webIdentityTokenFile?: string;
  }>;
  accountDefaults?: {
    roleName?: string;
    partition?: string;
    region?: string;
    externalId?: string;
    webIdentityTokenFile?: string;
  };
}

export interface AwsIamStrategyOptions {
  /** Backstage's root `Config` (its `aws` key is read), or the plain JSON of the root config. */
  config?: AwsConfigSource | { aws?: AwsIntegrationConfig; [key: string]: unknown };
  /** Accepted for Backstage compatibility; not used. */
  logger?: unknown;
  /** Reuse an EKS token for at most this long (0 to 840 s). Default 600; 0 turns it off. */
  tokenCacheSeconds?: number;
  /** Bound on each STS or credential-source call. Default 10000. */
  timeoutMs?: number;
  /** `false` caches no credentials and no tokens, as Backstage. Default `true`. */
  cache?: boolean;
}

/**
 * `aws`: an EKS token (`k8s-aws-v1.` + presigned STS GetCallerIdentity URL), byte-identical to
 * Backstage's, with credentials from the `aws` integration config or the default AWS chain.
 */
export declare class AwsIamStrategy extends NativeAuthenticationStrategy {
  constructor(options?: AwsIamStrategyOptions);
}

export interface PresignEksTokenOptions {
  clusterId: string;
  /** Default: `AWS_REGION`, else `us-east-1`. */
  region?: string;
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Default: now. */
  signingTime?: Date | number;
}

/** The EKS token `AwsIamStrategy` would produce for these inputs. */
export declare function presignEksToken(options: PresignEksTokenOptions): string;

/** Backstage's `LoggerService`, as far as the strategies use it. */
export interface StrategyLogger {
  info(message: string, meta?: Error | object): void;
  error(message: string, meta?: Error | object): void;
  warn?(message: string, meta?: Error | object): void;
  debug?(message: string, meta?: Error | object): void;
}

/** `@azure/identity`'s `AccessToken`. */
export interface AzureAccessToken {
  token: string;
  /** Epoch milliseconds. */
  expiresOnTimestamp: number;
}

/** `@azure/identity`'s `TokenCredential` (any object with this `getToken`). */
export interface AzureTokenCredential {
  getToken(
    scopes: string | string[],
    options?: { requestOptions?: { timeout?: number }; [key: string]: unknown },
  ): Promise<AzureAccessToken | null>;
}

export interface AzureIdentityStrategyOptions {
  /** Receives Backstage's lines: `Fetching new Azure token for AKS`, `Unable to fetch Azure token`. */
  logger?: StrategyLogger | unknown;
  /** Used instead of the native DefaultAzureCredential chain; its tokens go through the same cache. */
  tokenCredential?: AzureTokenCredential;
  /**
   * The clock (epoch ms), sampled before each `getCredential`. Default: `Date.now` when a
   * `tokenCredential` is given (its expiry timestamps are on that clock), else the system clock.
   */
  now?: () => number;
  /** Bound on one token fetch. Default 10000. */
  timeoutMs?: number;
  /** Callers within this long (jittered to 50-100 %) after a failed fetch share its error. Default 1000. */
  failureBackoffMs?: number;
  /** `false`: fetch on every call. Default `true`. */
  cache?: boolean;
  /** Read instead of `process.env` by the native chain (`AZURE_*`, `IDENTITY_*`, `PATH` for az/azd). */
  env?: Record<string, string>;
  /** Accepted for Backstage compatibility (the module passes it); not used. */
  config?: unknown;
}

/**
 * `azure`: a token for the AKS scope `6dae42f8-4368-4678-94ff-3960e28e3630/.default` from the
 * `TokenCredential` given, else natively in `DefaultAzureCredential`'s order (environment,
 * workload identity, managed identity, Azure CLI, Azure Developer CLI). Reused until 15 minutes
 * before expiry; a failed refresh serves the still-valid token; failures are never sticky.
 */
export declare class AzureIdentityStrategy extends NativeAuthenticationStrategy {
  constructor(logger: StrategyLogger, tokenCredential?: AzureTokenCredential);
  constructor(options?: AzureIdentityStrategyOptions);
}

export interface MicrosoftEntraIdStrategyOptions extends AzureIdentityStrategyOptions {
  /**
   * Backstage `Config` or root config JSON: `auth.providers.microsoft.<NODE_ENV>.{tenantId,
   * clientId,clientSecret}` and the default scope `kubernetes.auth.providers.microsoft.<NODE_ENV>.scope`.
   */
  config?: { getOptional(key: string): unknown } | Record<string, unknown>;
  /** Scope for clusters without the `kubernetes.io/microsoft-entra-id-scope` annotation. */
  scope?: string;
  tenantId?: string;
  clientId?: string;
  clientSecret?: string;
  /** For `tenantId`/`clientId`/`clientSecret`. Default `AZURE_AUTHORITY_HOST`, else `https://login.microsoftonline.com`. */
  authorityHost?: string;
}

/**
 * `microsoftEntraId`: a token for the cluster's `kubernetes.io/microsoft-entra-id-scope` (or the
 * default scope), one cache entry per scope, from a client secret, workload identity or managed
 * identity; `validateCluster` reports a cluster without a scope.
 */
export declare class MicrosoftEntraIdStrategy extends NativeAuthenticationStrategy {
  constructor(
    logger: StrategyLogger,
    options: { config?: MicrosoftEntraIdStrategyOptions['config'] },
    tokenCredential?: AzureTokenCredential,
  );
  constructor(options?: MicrosoftEntraIdStrategyOptions);
}

/** `google`: bearer token from `requestAuth.google`. */
export declare class GoogleStrategy extends NativeAuthenticationStrategy {
  constructor();
}

/** What `new GoogleServiceAccountStrategy(...)` reads of a Backstage `Config`. */
export interface GoogleServiceAccountConfigSource {
  getOptionalString(key: string): string | undefined;
}

export interface GoogleServiceAccountStrategyOptions {
  /**
   * Backstage's root `Config` (its `kubernetes.googleServiceAccountCredentials` string is
   * read), or the plain JSON of the root config.
   */
  config?:
    | GoogleServiceAccountConfigSource
    | { kubernetes?: { googleServiceAccountCredentials?: string }; [key: string]: unknown };
  /** Accepted for Backstage compatibility; not used. */
  logger?: unknown;
  /** The service-account key JSON text; wins over `config`. */
  credentials?: string;
  /** Bound on each token request. Default 10000. */
  timeoutMs?: number;
  /** `false` fetches a token on every call, as Backstage does. Default `true`. */
  cache?: boolean;
  /** The metadata server (`host[:port]` or URL); default `GCE_METADATA_HOST`, else `169.254.169.254`. */
  metadataHost?: string;
}

/**
 * `googleServiceAccount`: a Google OAuth2 access token (scope `cloud-platform`) from the
 * configured service-account key, else Application Default Credentials
 * (`GOOGLE_APPLICATION_CREDENTIALS`, the gcloud ADC file, the metadata server), cached until
 * 5 minutes before it expires.
 */
export declare class GoogleServiceAccountStrategy extends NativeAuthenticationStrategy {
  constructor(options?: GoogleServiceAccountStrategyOptions);
}

/** `oidc`: bearer token from `requestAuth.oidc[<kubernetes.io/oidc-token-provider>]`. */
export declare class OidcStrategy extends NativeAuthenticationStrategy {
  constructor();
}

export interface ServiceAccountStrategyOptions {
  /** In-cluster token file. Default `/var/run/secrets/kubernetes.io/serviceaccount/token`. */
  tokenPath?: string;
  /** Re-read the token file at most this often. Default 60000. */
  reloadIntervalMs?: number;
  /** Bound on one read of the token file. Default 10000. */
  timeoutMs?: number;
  /** `false` re-reads the file on every call, as Backstage does. Default `true`. */
  cache?: boolean;
}

/** `serviceAccount`: `authMetadata.serviceAccountToken`, else the in-cluster token file. */
export declare class ServiceAccountStrategy extends NativeAuthenticationStrategy {
  constructor(options?: ServiceAccountStrategyOptions);
}

export interface PinnipedAuthenticator {
  apiGroup: string;
  kind: string;
  name: string;
}

export interface PinnipedStrategyOptions {
  /** Default `{ apiGroup: 'authentication.concierge.pinniped.dev', kind: 'JWTAuthenticator', name: 'supervisor' }`. */
  authenticator?: Partial<PinnipedAuthenticator>;
  /** Group and version of TokenCredentialRequest. Default `login.concierge.pinniped.dev/v1alpha1`. */
  tokenCredentialRequestApiGroup?: string;
  /** Most certificates cached (LRU). Default 10000; 0 turns the cache off. */
  cacheSize?: number;
  /** `false` turns the certificate cache off. Default `true`. */
  cache?: boolean;
  /** Bound on one TokenCredentialRequest. Default 10000. */
  timeoutMs?: number;
}

/**
 * `pinniped`: exchanges `requestAuth.pinniped.clusteridtoken` at the cluster's Pinniped
 * Concierge for an x509 client certificate, cached per user until shortly before it expires.
 * Per-cluster annotations `kubernetes.io/x-pinniped-authenticator-{api-group,kind,name}` and
 * `kubernetes.io/x-pinniped-token-credential-request-api-group` override the options;
 * `presentAuthMetadata` returns `{ audience }` from `kubernetes.io/x-pinniped-audience`.
 */
export declare class PinnipedStrategy extends NativeAuthenticationStrategy {
  constructor(options?: PinnipedStrategyOptions);
}

export interface PinnipedParameters {
  clusterScopedIdToken: string;
  authenticator: PinnipedAuthenticator;
  tokenCredentialRequest?: { apiGroup?: string };
}

export interface PinnipedClientCerts {
  key: string;
  cert: string;
  expirationTimestamp: string;
}

/** Backstage's `PinnipedHelper`; every failure rejects with an `Error` carrying the reason. */
export declare class PinnipedHelper {
  constructor(logger?: unknown, options?: { timeoutMs?: number });
  tokenCredentialRequest(
    clusterDetails: ClusterDetails,
    pinnipedParams: PinnipedParameters,
  ): Promise<PinnipedClientCerts>;
}

export interface DispatchStrategyOptions {
  authStrategyMap: { [key: string]: AuthenticationStrategy };
}

/** Routes to the strategy named by `authMetadata['kubernetes.io/auth-provider']`. */
export declare class DispatchStrategy implements AuthenticationStrategy {
  constructor(options: DispatchStrategyOptions);
  /** Throws synchronously when no strategy is registered for the provider. */
  getCredential(
    clusterDetails: ClusterDetails,
    requestAuth?: KubernetesRequestAuth,
  ): Promise<KubernetesCredential>;
  validateCluster(authMetadata: AuthMetadata): Error[];
  presentAuthMetadata(authMetadata: AuthMetadata): AuthMetadata;
}

/** Backstage registration names → classes, for every name implemented natively. */
export declare const strategyClasses: Readonly<{
  aks: typeof AksStrategy;
  aws: typeof AwsIamStrategy;
  azure: typeof AzureIdentityStrategy;
  google: typeof GoogleStrategy;
  googleServiceAccount: typeof GoogleServiceAccountStrategy;
  localKubectlProxy: typeof AnonymousStrategy;
  microsoftEntraId: typeof MicrosoftEntraIdStrategy;
  oidc: typeof OidcStrategy;
  pinniped: typeof PinnipedStrategy;
  serviceAccount: typeof ServiceAccountStrategy;
}>;

/** Backstage default names without a native strategy yet. */
export declare const notYetNative: readonly string[];
