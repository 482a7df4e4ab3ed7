// Configuration read by backstage-kubernetes-auth-native's backend module
// (`backend.add(import('backstage-kubernetes-auth-native/module'))`). The package ships this
// file compiled to config.schema.json (`npm run config-schema`), which package.json names as
// its `configSchema`, so Backstage's config tooling (`backstage-cli config:check`) validates it.

export interface Config {
  kubernetes?: {
    /**
     * Options of the backstage-kubernetes-auth-native backend module.
     */
    nativeAuth?: {
      /**
       * Backstage auth provider names the module must not register, for example
       * `['google']` to register your own strategy under that name in another module.
       * Clusters using a name that nobody registers fail Backstage's startup validation.
       * Listing every native name registers nothing, and Backstage then uses its own built-in
       * strategies. An unknown name aborts startup.
       */
      disabled?: string[];
    };
  };
}
