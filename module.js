'use strict';
// `backend.add(import('backstage-kubernetes-auth-native/module'))`: registers a native
// strategy under every Backstage name we implement. Registering any strategy replaces all of
// Backstage's defaults, so every name we have is registered here, and the names we do not
// have yet are reported at startup.

const { createBackendModule, coreServices } = require('@backstage/backend-plugin-api');
const { kubernetesAuthStrategyExtensionPoint } = require('@backstage/plugin-kubernetes-node');
const { strategyClasses, notYetNative } = require('./index.js');

module.exports = createBackendModule({
  pluginId: 'kubernetes',
  moduleId: 'native-auth',
  register(env) {
    env.registerInit({
      deps: {
        authStrategy: kubernetesAuthStrategyExtensionPoint,
        config: coreServices.rootConfig,
        logger: coreServices.logger,
      },
      async init({ authStrategy, config, logger }) {
        const names = Object.keys(strategyClasses);
        for (const name of names) {
          authStrategy.addAuthStrategy(name, new strategyClasses[name]({ config, logger }));
        }
        logger.info(`Native Kubernetes auth strategies registered: ${names.join(', ')}`);
        if (notYetNative.length > 0) {
          logger.warn(
            `No native strategy yet for ${notYetNative.join(', ')}; clusters using these auth providers fail validation`,
          );
        }
      },
    });
  },
});
