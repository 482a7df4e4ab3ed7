'use strict';
// The fuzz property, run by fuzz.test.js in a child Jest process (so that a crash of the
// process is seen as a crash, and errors are still checked against Jest's vm realm). Every
// target of targets.js: the constructor and every method, FUZZ_PER_UNIT generated inputs
// each. Every throw or rejection is an `Error` of this realm whose message names a field or
// the upstream; no promise stays pending; results have the documented shape.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { targets } = require('./targets');
const { kinds, materialize, fc } = require('./arbitraries');
const { observe, leaks, record } = require('./record');

const PER_UNIT = Number(process.env.FUZZ_PER_UNIT ?? 100);
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
const SETTLE_MS = 3000; // the fuzzed instances' timeoutMs (2000) plus 1 s
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fuzz-'));
const ctx = { tmp };
const counts = {};

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
  const inputs = Object.values(counts).reduce((n, c) => n + c.inputs, 0);
  record(`fuzz-${process.env.FUZZ_SHARD ?? 'all'}`, { seed: SEED, perUnit: PER_UNIT, inputs, units: counts });
  expect(leaks()).toEqual([]);
});

async function outcome(fn) {
  let value;
  try {
    value = fn();
  } catch (error) {
    return { threw: error };
  }
  if (!value || typeof value.then !== 'function') return { returned: value };
  let timer;
  const pending = new Promise((resolve) => {
    timer = setTimeout(() => resolve({ pending: true }), SETTLE_MS);
  });
  const settled = value.then(
    (resolved) => ({ resolved }),
    (rejected) => ({ rejected }),
  );
  const o = await Promise.race([settled, pending]);
  clearTimeout(timer);
  return o;
}

function checkError(e, names, unit) {
  observe(unit, e);
  if (!(e instanceof Error)) throw new Error(`${unit}: threw a non-Error (or an Error of another realm): ${String(e)}`);
  if (!names.test(e.message)) throw new Error(`${unit}: the message does not name a field or upstream: ${e.message.slice(0, 300)}`);
}

const CREDENTIAL_TYPES = ['bearer token', 'anonymous', 'x509 client certificate'];
const checks = {
  getCredential(o, unit) {
    if (!('resolved' in o)) throw new Error(`${unit}: did not return a promise`);
    if (!CREDENTIAL_TYPES.includes(o.resolved?.type)) throw new Error(`${unit}: resolved to ${JSON.stringify(o.resolved)}`);
  },
  validateCluster(o, unit) {
    if (!Array.isArray(o.returned) || !o.returned.every((e) => e instanceof Error)) throw new Error(`${unit}: returned ${String(o.returned)}`);
    o.returned.forEach((e) => observe(unit, e));
  },
  presentAuthMetadata(o, unit) {
    if (typeof o.returned !== 'object' || o.returned === null) throw new Error(`${unit}: returned ${String(o.returned)}`);
  },
  tokenCredentialRequest(o, unit) {
    const v = o.resolved;
    if (typeof v?.cert !== 'string' || typeof v?.key !== 'string') throw new Error(`${unit}: resolved to ${String(v)}`);
  },
  constructor(o, unit) {
    if (typeof o.returned !== 'object') throw new Error(`${unit}: returned ${String(o.returned)}`);
  },
  call(o, unit) {
    if (typeof o.returned !== 'string') throw new Error(`${unit}: returned ${String(o.returned)}`);
  },
};

function unitsOf(t) {
  if (t.call) return [{ method: 'call', args: t.args, invoke: (args) => t.call(...args) }];
  const instance = t.instance(ctx);
  return [
    { method: 'constructor', args: ['options'], invoke: (args) => t.make(...args) },
    ...Object.entries(t.methods).map(([method, args]) => ({ method, args, invoke: (real) => instance[method](...real) })),
  ];
}

describe.each(targets.map((t) => [t.name, t]))('%s', (name, t) => {
  it.each(unitsOf(t).map((u) => [u.method, u]))(`${name}: %s with generated junk`, async (method, u) => {
    const unit = `${name}.${method}`;
    const c = (counts[unit] = { inputs: 0, threw: 0, rejected: 0, ok: 0 });
    await fc.assert(
      fc.asyncProperty(fc.tuple(...u.args.map((k) => kinds[k])), async (generated) => {
        c.inputs += 1;
        const o = await outcome(() => u.invoke(materialize(generated)));
        if (o.pending) throw new Error(`${unit}: promise still pending after ${SETTLE_MS} ms`);
        if ('threw' in o) {
          c.threw += 1;
          return checkError(o.threw, t.names, unit);
        }
        if ('rejected' in o) {
          c.rejected += 1;
          return checkError(o.rejected, t.names, unit);
        }
        c.ok += 1;
        checks[method](o, unit);
      }),
      { numRuns: PER_UNIT, seed: SEED, endOnFailure: true },
    );
  }, 600_000);
});
