import type { BackendFeature } from '@backstage/backend-plugin-api';

/** Registers every native strategy with `@backstage/plugin-kubernetes-backend`. */
declare const kubernetesModuleNativeAuth: BackendFeature;
export default kubernetesModuleNativeAuth;
