// Compiled by `npm run typecheck` (tsc --strict): every class must be assignable to
// Backstage's own AuthenticationStrategy, and the module to a BackendFeature.
import type {
  AuthenticationStrategy,
  KubernetesCredential,
  ClusterDetails,
} from '@backstage/plugin-kubernetes-node';
import type { BackendFeature } from '@backstage/backend-plugin-api';
import {
  AksStrategy,
  AnonymousStrategy,
  AwsIamStrategy,
  AzureIdentityStrategy,
  DispatchStrategy,
  MicrosoftEntraIdStrategy,
  GoogleStrategy,
  GoogleServiceAccountStrategy,
  OidcStrategy,
  PinnipedHelper,
  PinnipedStrategy,
  ServiceAccountStrategy,
  presignEksToken,
  strategyClasses,
} from '..';
import type { PinnipedHelper as BackstagePinnipedHelper } from '@backstage/plugin-kubernetes-node';
import type { Config } from '@backstage/config';
import nativeAuthModule from '../module';

const strategies: AuthenticationStrategy[] = [
  new AksStrategy(),
  new AnonymousStrategy(),
  new GoogleStrategy(),
  new OidcStrategy(),
  new ServiceAccountStrategy(),
  new ServiceAccountStrategy({ tokenPath: '/tmp/token', reloadIntervalMs: 1000, timeoutMs: 500, cache: false }),
  new DispatchStrategy({ authStrategyMap: { aks: new AksStrategy() } }),
  new PinnipedStrategy(),
  new PinnipedStrategy({ authenticator: { name: 'tmc' }, cacheSize: 100, timeoutMs: 5000 }),
  new AwsIamStrategy(),
  new GoogleServiceAccountStrategy(),
  new GoogleServiceAccountStrategy({ credentials: '{}', timeoutMs: 500, cache: false, metadataHost: '127.0.0.1:1' }),
  new GoogleServiceAccountStrategy({ config: { kubernetes: { googleServiceAccountCredentials: '{}' } } }),
  new AwsIamStrategy({ config: { aws: { mainAccount: { profile: 'p' } } }, tokenCacheSeconds: 0, timeoutMs: 500 }),
  new AzureIdentityStrategy(),
  new AzureIdentityStrategy({ timeoutMs: 500, failureBackoffMs: 0, now: () => Date.now(), env: {} }),
  new AzureIdentityStrategy(
    { info() {}, error() {} },
    { getToken: async () => ({ token: 't', expiresOnTimestamp: Date.now() + 3600_000 }) },
  ),
  new MicrosoftEntraIdStrategy({ scope: 'app/.default', tenantId: 't', clientId: 'c', clientSecret: 's' }),
  new MicrosoftEntraIdStrategy({ info() {}, error() {} }, { config: {} }),
];

function fromBackstage(config: Config, logger: unknown): AuthenticationStrategy {
  void new GoogleServiceAccountStrategy({ config, logger });
  return new AwsIamStrategy({ config, logger });
}

function entraFromBackstage(config: Config, logger: unknown): AuthenticationStrategy[] {
  return [new MicrosoftEntraIdStrategy({ config, logger }), new AzureIdentityStrategy({ config, logger })];
}

const eksToken: string = presignEksToken({
  clusterId: 'c',
  credentials: { accessKeyId: 'AKID', secretAccessKey: 's' },
  signingTime: new Date(),
});

// Our helper fits where Backstage's is used.
const helper: Pick<BackstagePinnipedHelper, 'tokenCredentialRequest'> = new PinnipedHelper();

const aks: AuthenticationStrategy = new AksStrategy();
const dispatch: AuthenticationStrategy = new DispatchStrategy({
  authStrategyMap: { aks, oidc: new OidcStrategy(), custom: strategies[0] },
});

for (const name of Object.keys(strategyClasses) as (keyof typeof strategyClasses)[]) {
  const s: AuthenticationStrategy = new strategyClasses[name]();
  void s;
}

const feature: BackendFeature = nativeAuthModule;

async function use(cd: ClusterDetails): Promise<string> {
  const credential: KubernetesCredential = await dispatch.getCredential(cd, {});
  switch (credential.type) {
    case 'bearer token':
      return credential.token;
    case 'x509 client certificate':
      return credential.cert + credential.key;
    case 'anonymous':
      return '';
  }
}

const errors: Error[] = aks.validateCluster({});
const presented: Record<string, string> = aks.presentAuthMetadata({});

// @ts-expect-error a number is not a valid token path
new ServiceAccountStrategy({ tokenPath: 5 });

// @ts-expect-error credentials are required
presignEksToken({ clusterId: 'c' });

export { strategies, feature, use, errors, presented, helper, fromBackstage, entraFromBackstage, eksToken };
