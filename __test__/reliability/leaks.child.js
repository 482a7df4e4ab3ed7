'use strict';
// Run by leaks.test.js, alone in its own process so that RSS and open descriptors are this
// addon's. Modes:
//   cached <target> <calls>    calls through targets.js's `cached` call (answered from cache)
//   refresh <upstream> <calls> calls that each reach the upstream (cache off, or a new key),
//                              against the stand-in at RELI_ENDPOINT (env set by the parent)
// Prints one JSON line: RSS and descriptor counts before and after.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const [mode, name, callsArg] = process.argv.slice(2);
const calls = Number(callsArg);
const BATCH = 1000;
const CONCURRENCY = 8; // refresh calls in flight at once: the most sockets a pool may need

function fds() {
  const all = fs.readdirSync('/proc/self/fd');
  let sockets = 0;
  for (const fd of all) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:')) sockets += 1;
    } catch {
      // closed while listing
    }
  }
  return { fds: all.length, sockets };
}

function settle() {
  for (let i = 0; i < 4; i++) global.gc();
  return process.memoryUsage();
}

async function main() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'leaks-'));
  let run;
  if (mode === 'cached') {
    const { targets } = require('./targets');
    const target = targets.find((t) => t.name === name);
    const { strategy, args } = target.cached({ tmp, concierge: JSON.parse(process.env.RELI_CONCIERGE ?? '{}') });
    run = async (from, count) => {
      const batch = [];
      for (let i = 0; i < count; i++) batch.push(strategy.getCredential(...args));
      await Promise.all(batch);
    };
  } else {
    const { upstreams } = require('./upstreams');
    const upstream = upstreams.find((u) => u.name === name);
    const ctx = { endpoint: process.env.RELI_ENDPOINT, caData: process.env.RELI_CA_DATA, timeoutMs: 10_000, cache: false };
    const strategy = upstream.make(ctx);
    let n = 0;
    run = async (from, count) => {
      for (let i = 0; i < count; i += CONCURRENCY) {
        await Promise.all(Array.from({ length: Math.min(CONCURRENCY, count - i) }, () => upstream.call(strategy, ctx, ++n)));
      }
    };
  }
  // Warm up: the first calls fill caches, start the runtime and open pooled connections, and
  // V8 grows its heap to its working size; growth is measured from there.
  const warmUp = mode === 'cached' ? 50_000 : Math.min(calls, 200);
  for (let done = 0; done < warmUp; done += BATCH) await run(done, Math.min(BATCH, warmUp - done));
  const memBefore = settle();
  const before = fds();
  const started = Date.now();
  for (let done = 0; done < calls; done += BATCH) await run(done, Math.min(BATCH, calls - done));
  const ms = Date.now() - started;
  await new Promise((r) => setTimeout(r, 100));
  const memAfter = settle();
  const after = fds();
  fs.rmSync(tmp, { recursive: true, force: true });
  console.log(JSON.stringify({ mode, name, calls, ms, rssBefore: memBefore.rss, rssAfter: memAfter.rss, rssGrowth: memAfter.rss - memBefore.rss, heapUsedGrowth: memAfter.heapUsed - memBefore.heapUsed, fdsBefore: before.fds, fdsAfter: after.fds, socketsBefore: before.sockets, socketsAfter: after.sockets, concurrency: mode === 'refresh' ? CONCURRENCY : undefined }));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
