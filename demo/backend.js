'use strict';
// The Backstage backend of `npm run demo` and of the fresh-install test, written as a Backstage
// team writes packages/backend/src/index.ts: the kubernetes plugin plus our module, which
// replaces Backstage's JS auth strategies with the native ones. demo/harness.js runs it as its
// own Node process with `--config demo/app-config.yaml`.

const { createBackend } = require('@backstage/backend-defaults');

const backend = createBackend();
backend.add(import('@backstage/plugin-kubernetes-backend'));
backend.add(import('backstage-kubernetes-auth-native/module'));
// A backend whose start-up fails only logs it and keeps running; exit instead, so that the
// demo and the tests see the failure at once.
backend.start().catch((error) => {
  console.error(error);
  process.exit(1);
});
