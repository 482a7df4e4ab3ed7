'use strict';
// Every exported class and function, as one entry each. Adding a strategy to the fuzz, leak
// and clean-exit suites is one entry here:
//   name      the export's name
//   kind      for strategies: the Backstage registration name (DispatchStrategy's map key)
//   make      (options) -> an instance (the constructor under fuzz)
//   instance  (ctx) -> an instance whose methods are fuzzed: it must not reach a real network
//             (ctx.tmp is a scratch directory; STS and the metadata endpoints point at a closed
//             loopback port in the fuzz process's environment)
//   methods   method name -> the argument kinds the fuzzer generates (see fuzz.run.js)
//   names     RegExp: a thrown or rejected Error's message must name a field or upstream
//   cached    optional (ctx) -> { strategy, args }: a call that is answered from the cache
//             after the first (ctx.concierge is a Concierge stand-in, see leaks.child.js)
//   call      optional: for a plain function (presignEksToken) instead of methods

const fs = require('node:fs');
const path = require('node:path');
const native = require('../..');

const MARK = 'LEAKCANARY';
const AWS_MAIN = { accessKeyId: 'AKIAFUZZEXAMPLE00001', secretAccessKey: `fuzzSecret/${MARK}/0001` };
const STRATEGY_METHODS = {
  getCredential: ['clusterDetails', 'requestAuth'],
  validateCluster: ['authMetadata'],
  presentAuthMetadata: ['authMetadata'],
};
// What an error may name: the argument or option at fault, or the upstream asked.
// Backstage's own messages (kept verbatim) name the field as "under auth.google in request
// body" or "oidcTokenProvider"; the provider in "under oidc.<provider>" can be any string.
const CONTRACT = / under \S[^]* in request body|oidcTokenProvider|authProvider/;
const FIELDS = new RegExp(`\\b(options|clusterDetails|requestAuth|authMetadata|pinnipedParams|config)\\b|${CONTRACT.source}`);
const names = (extra) => new RegExp(`${FIELDS.source}|${extra}`);
const cluster = (authMetadata = {}) => ({ name: 'c', url: 'https://127.0.0.1:6443', authMetadata });

function tokenFile(ctx) {
  const file = path.join(ctx.tmp, 'sa-token');
  if (!fs.existsSync(file)) fs.writeFileSync(file, `sa-token-${MARK}`);
  return file;
}

const targets = [
  {
    name: 'AksStrategy',
    kind: 'aks',
    make: (o) => new native.AksStrategy(o),
    instance: () => new native.AksStrategy(),
    methods: STRATEGY_METHODS,
    names: FIELDS,
    cached: () => ({ strategy: new native.AksStrategy(), args: [cluster(), { aks: `aks-${MARK}` }] }),
  },
  {
    name: 'AnonymousStrategy',
    kind: 'localKubectlProxy',
    make: (o) => new native.AnonymousStrategy(o),
    instance: () => new native.AnonymousStrategy(),
    methods: STRATEGY_METHODS,
    names: FIELDS,
    cached: () => ({ strategy: new native.AnonymousStrategy(), args: [cluster(), {}] }),
  },
  {
    name: 'AwsIamStrategy',
    kind: 'aws',
    make: (o) => new native.AwsIamStrategy(o),
    instance: () => new native.AwsIamStrategy({ config: { aws: { mainAccount: AWS_MAIN } }, timeoutMs: 2000 }),
    methods: STRATEGY_METHODS,
    names: names('\\b(STS|AWS)\\b|Malformed ARN|no AWS integration'),
    cached: () => ({ strategy: new native.AwsIamStrategy({ config: { aws: { mainAccount: AWS_MAIN } } }), args: [cluster(), {}] }),
  },
  {
    name: 'GoogleStrategy',
    kind: 'google',
    make: (o) => new native.GoogleStrategy(o),
    instance: () => new native.GoogleStrategy(),
    methods: STRATEGY_METHODS,
    names: FIELDS,
    cached: () => ({ strategy: new native.GoogleStrategy(), args: [cluster(), { google: `google-${MARK}` }] }),
  },
  {
    name: 'OidcStrategy',
    kind: 'oidc',
    make: (o) => new native.OidcStrategy(o),
    instance: () => new native.OidcStrategy(),
    methods: STRATEGY_METHODS,
    names: FIELDS,
    cached: () => ({
      strategy: new native.OidcStrategy(),
      args: [cluster({ 'kubernetes.io/oidc-token-provider': 'okta' }), { oidc: { okta: `oidc-${MARK}` } }],
    }),
  },
  {
    name: 'ServiceAccountStrategy',
    kind: 'serviceAccount',
    make: (o) => new native.ServiceAccountStrategy(o),
    instance: (ctx) => new native.ServiceAccountStrategy({ tokenPath: tokenFile(ctx), timeoutMs: 2000 }),
    methods: STRATEGY_METHODS,
    names: names('serviceAccountToken|token file|tokenPath'),
    cached: (ctx) => ({ strategy: new native.ServiceAccountStrategy({ tokenPath: tokenFile(ctx) }), args: [cluster(), {}] }),
  },
  {
    name: 'PinnipedStrategy',
    kind: 'pinniped',
    make: (o) => new native.PinnipedStrategy(o),
    instance: () => new native.PinnipedStrategy({ timeoutMs: 2000 }),
    methods: STRATEGY_METHODS,
    names: names('pinniped|tokencredentialrequests'),
    cached: (ctx) => ({
      strategy: new native.PinnipedStrategy(),
      args: [
        { name: 'p', url: ctx.concierge.url, caData: ctx.concierge.caData, authMetadata: {} },
        { pinniped: { clusteridtoken: ctx.concierge.token } },
      ],
    }),
  },
  {
    name: 'DispatchStrategy',
    make: (o) => new native.DispatchStrategy(o),
    instance: (ctx) =>
      new native.DispatchStrategy({
        authStrategyMap: Object.fromEntries(
          targets
            .filter((t) => t.kind)
            .map((t) => [t.kind, t.instance(ctx)]),
        ),
      }),
    methods: STRATEGY_METHODS,
    names: names('\\b(STS|AWS)\\b|Malformed ARN|no AWS integration|serviceAccountToken|token file|tokenPath'),
    cached: () => ({
      strategy: new native.DispatchStrategy({ authStrategyMap: { aks: new native.AksStrategy() } }),
      args: [cluster({ 'kubernetes.io/auth-provider': 'aks' }), { aks: `aks-${MARK}` }],
    }),
  },
  {
    name: 'PinnipedHelper',
    make: (o) => new native.PinnipedHelper(undefined, o),
    instance: () => new native.PinnipedHelper(undefined, { timeoutMs: 2000 }),
    methods: { tokenCredentialRequest: ['clusterDetails', 'pinnipedParams'] },
    names: names('pinniped|tokencredentialrequests'),
  },
  {
    name: 'presignEksToken',
    call: (o) => native.presignEksToken(o),
    args: ['presignOptions'],
    names: /\boptions\b/,
  },
];

module.exports = { targets, MARK, AWS_MAIN };
