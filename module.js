'use strict';
// `backend.add(import('backstage-kubernetes-auth-native/module'))`: registers a native
// strategy under every Backstage name we implement. Registering any strategy replaces all of
// Backstage's defaults, so every name we have is registered here, and the names we do not
// have yet are reported at startup. `kubernetes.nativeAuth.disabled` (config.d.ts) narrows
// the set.

const { createBackendModule, coreServices } = require('@backstage/backend-plugin-api');
const { kubernetesAuthStrategyExtensionPoint } = require('@backstage/plugin-kubernetes-node');
const { strategyClasses, notYetNative } = require('./index.js');

const DISABLED_KEY = 'kubernetes.nativeAuth.disabled';

/** The names `kubernetes.nativeAuth.disabled` lists; throws on a name we do not know. */
function readDisabled(config) {
  const disabled = config.getOptionalStringArray(DISABLED_KEY) ?? [];
  const known = [...Object.keys(strategyClasses), ...notYetNative].sort();
  const unknown = disabled.filter((name) => !known.includes(name));
  if (unknown.length > 0) {
    throw new Error(
      `Invalid config ${DISABLED_KEY}: unknown auth provider ${unknown.map((n) => `'${n}'`).join(', ')}; ` +
        `known names are ${known.join(', ')}`,
    );
  }
  return new Set(disabled);
}

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
        const disabled = readDisabled(config);
        const names = Object.keys(strategyClasses).filter((name) => !disabled.has(name));
        for (const name of names) {
          authStrategy.addAuthStrategy(name, new strategyClasses[name]({ config, logger }));
        }
        if (names.length > 0) {
          logger.info(`Native Kubernetes auth strategies registered: ${names.join(', ')}`);
        } else {
          logger.warn(
            `${DISABLED_KEY} lists every native strategy; none registered, so Backstage uses its own built-in strategies`,
          );
        }
        if (disabled.size > 0) {
          logger.info(`Not registered (${DISABLED_KEY}): ${[...disabled].join(', ')}`);
        }
        const missing = notYetNative.filter((name) => !disabled.has(name));
        if (names.length > 0 && missing.length > 0) {
          logger.warn(
            `No native strategy yet for ${missing.join(', ')}; clusters using these auth providers fail validation`,
          );
        }
      },
    });
  },
});
