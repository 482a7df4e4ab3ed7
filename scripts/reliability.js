#!/usr/bin/env node
'use strict';
// The reliability and security suite (issue 7): `npm run test:reliability` (full sizes) or
// `--subset` (the bounded run inside `npm test`).
//   1. Jest on __test__/reliability with --detectOpenHandles (fuzz, faults, isolation,
//      leaks); any open handle Jest reports fails the run.
//   2. The Rust parser fuzz loops (fuzz/, its own Cargo workspace), for a bounded time
//      (full run only).
//   3. The secret check: the marker or a private key's fingerprint in any output fails.
// Figures are in __test__/reliability/results/*.json; a summary is printed at the end.
// Extra arguments are passed to Jest (e.g. a file name filter).

const fs = require('node:fs');
const path = require('node:path');
const { runScanned, markerLines } = require('./leak-scan');

const ROOT = path.join(__dirname, '..');
const RESULTS = path.join(ROOT, '__test__', 'reliability', 'results');
const args = process.argv.slice(2);
const subset = args.includes('--subset');
const jestArgs = args.filter((a) => a !== '--subset');
const FUZZ_SECONDS = process.env.RUST_FUZZ_SECONDS ?? (subset ? '20' : '300');

async function main() {
  const failures = [];
  let output = '';
  fs.rmSync(RESULTS, { recursive: true, force: true });
  const env = { ...process.env, RELIABILITY_FULL: subset ? '0' : '1' };

  console.log(`== reliability: Jest (${subset ? 'subset' : 'full'})`);
  const jest = await runScanned(
    process.execPath,
    [
      '--experimental-vm-modules',
      path.join(ROOT, 'node_modules/jest/bin/jest.js'),
      // First: the list options below would swallow file filters that follow them.
      ...jestArgs,
      '--runInBand',
      '--detectOpenHandles',
      '--testPathIgnorePatterns=/node_modules/',
      '--roots=<rootDir>/__test__/reliability',
    ],
    { cwd: ROOT, env },
  );
  output += jest.output;
  if (jest.code !== 0 || jest.signal) failures.push(`Jest exited with ${jest.signal ?? jest.code}`);
  const handles = openHandles(jest.output);
  if (handles.length) failures.push(`Jest --detectOpenHandles reported open handles: ${handles.join(', ')}`);

  // Not in the subset: fuzz/ is its own workspace, and its different feature set rebuilds
  // the dependency tree (7-9 min on a 2-core CI machine) for 20 s of fuzzing.
  if (!jestArgs.length && !subset) {
    console.log(`== reliability: Rust parser fuzz loops (${FUZZ_SECONDS} s in all)`);
    // From fuzz/, so that fuzz/.cargo/config.toml (the shared target directory) applies.
    const cargo = await runScanned('cargo', ['test', '--release', '--', '--nocapture', '--test-threads=1'], {
      cwd: path.join(ROOT, 'fuzz'),
      env: { ...env, RUST_FUZZ_SECONDS: FUZZ_SECONDS },
    });
    output += cargo.output;
    if (cargo.code !== 0 || cargo.signal) failures.push(`cargo fuzz loops exited with ${cargo.signal ?? cargo.code}`);
  }

  console.log('== reliability: secret check');
  let results = '';
  for (const f of fs.existsSync(RESULTS) ? fs.readdirSync(RESULTS) : []) results += fs.readFileSync(path.join(RESULTS, f), 'utf8');
  const leaked = [...markerLines(output), ...markerLines(results)];
  if (leaked.length) failures.push(`the secret marker appeared ${leaked.length} time(s):\n  ${leaked.slice(0, 20).join('\n  ')}`);
  const summary = summarize(output, leaked.length);
  fs.mkdirSync(RESULTS, { recursive: true });
  fs.writeFileSync(path.join(RESULTS, 'summary.json'), JSON.stringify(summary, null, 2));
  console.log(JSON.stringify(summary, null, 2));
  if (failures.length) {
    console.error(`reliability: FAILED\n- ${failures.join('\n- ')}`);
    process.exit(1);
  }
  console.log('reliability: passed');
}

// The open handles Jest lists, less one: napi-rs's `CustomGC`, the threadsafe function it
// makes when the addon loads (to free values on the JS thread). It is unref'd, so it keeps
// no process alive (clean-exit.test.js proves exits), but it has no `hasRef` for Jest to ask.
const EXPECTED_HANDLES = ['CustomGC'];
function openHandles(output) {
  const at = output.search(/Jest has detected the following \d+ open handles?/);
  if (at < 0) return [];
  return [...output.slice(at).matchAll(/^\s+●\s+(\S+)\s*$/gm)].map((m) => m[1]).filter((h) => !EXPECTED_HANDLES.includes(h));
}

function read(name) {
  try {
    return JSON.parse(fs.readFileSync(path.join(RESULTS, `${name}.json`), 'utf8'));
  } catch {
    return undefined;
  }
}

function summarize(output, markersLeaked) {
  const fuzz = read('fuzz-all');
  const faults = read('faults');
  const isolation = read('isolation');
  const leaks = read('leaks');
  const rust = [...output.matchAll(/rust-fuzz (\S+): (\d+) inputs/g)].map((m) => ({ target: m[1], inputs: Number(m[2]) }));
  return {
    mode: subset ? 'subset' : 'full',
    fuzzInputs: fuzz?.inputs,
    fuzzSeed: fuzz?.seed,
    faultsPerUpstream: faults && Object.fromEntries(Object.entries(faults.upstreams).map(([k, v]) => [k, Object.values(v.faults).reduce((a, b) => a + b, 0)])),
    faultKinds: faults && Object.keys(Object.values(faults.upstreams)[0]?.faults ?? {}),
    longestSettleMs: faults?.longestSettleMs,
    faultTimeoutMs: faults?.timeoutMs,
    markersLeaked,
    crossUserResults: isolation && isolation.crossUser + isolation.crossCluster,
    isolation: isolation && { users: isolation.users, clusters: isolation.clusters, calls: isolation.calls },
    leaks,
    rustFuzz: rust,
  };
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
