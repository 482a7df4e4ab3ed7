'use strict';
// Runs the loopback Kubernetes API + Pinniped Concierge stand-in as its own process (so its
// memory is not counted in a measured backend). Prints {url, caData} on stdout; stops on
// SIGTERM or when stdin closes.

const { KubeApiStandIn } = require('../__test__/helpers/kube-api');

(async () => {
  const users = JSON.parse(process.argv[2] ?? '{}');
  const api = await new KubeApiStandIn({ tokens: users.tokens ?? {}, concierge: { users: users.concierge ?? {} } }).start();
  process.stdout.write(JSON.stringify({ url: api.url, caData: api.caData }) + '\n');
  const stop = () => api.stop().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.stdin.on('end', stop);
  process.stdin.resume();
})();
