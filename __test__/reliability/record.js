'use strict';
// Shared by the reliability suite: a results directory (gitignored) for the figures the
// closing note quotes, and the secret-leak watch. Everything a test sees that a user or
// operator could see (error messages, logger lines, child processes' output) goes through
// `observe`; `leaks()` lists what carries the marker or a registered fingerprint.

const fs = require('node:fs');
const path = require('node:path');

const MARK = 'LEAKCANARY';
const RESULTS = path.join(__dirname, 'results');
/** `RELIABILITY_FULL=1` (npm run test:reliability) runs the full sizes; else the CI subset. */
const FULL = process.env.RELIABILITY_FULL === '1';

const observed = [];
const fingerprints = new Set([MARK]);

/** A secret that cannot carry the marker (a private key): its PEM body must not appear. */
function fingerprint(pem) {
  const body = String(pem)
    .split('\n')
    .filter((l) => l && !l.startsWith('-----'))
    .join('');
  if (body.length >= 64) fingerprints.add(body.slice(20, 64));
}

function observe(where, value) {
  const text = value instanceof Error ? `${value.name}: ${value.message}\n${value.stack ?? ''}` : typeof value === 'string' ? value : safeJson(value);
  observed.push({ where, text });
}

function safeJson(v) {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/** A Backstage-shaped logger that records every line. */
function recordingLogger(where = 'logger') {
  const log = (level) => (message, meta) => observe(`${where}.${level}`, `${message} ${meta === undefined ? '' : safeJson(meta)}`);
  const logger = { error: log('error'), warn: log('warn'), info: log('info'), debug: log('debug'), child: () => logger };
  return logger;
}

function findLeaks(entries) {
  const found = [];
  for (const { where, text } of entries) {
    for (const f of fingerprints) if (text.includes(f)) found.push({ where, marker: f === MARK ? MARK : 'private-key fingerprint', excerpt: excerpt(text, f) });
  }
  return found;
}

function excerpt(text, f) {
  const i = text.indexOf(f);
  return text.slice(Math.max(0, i - 80), i + f.length + 20);
}

const leaks = () => findLeaks(observed);

/** Merges `data` into results/<name>.json. */
function record(name, data) {
  fs.mkdirSync(RESULTS, { recursive: true });
  const file = path.join(RESULTS, `${name}.json`);
  let before = {};
  try {
    before = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    // first write
  }
  fs.writeFileSync(file, JSON.stringify({ ...before, ...data, full: FULL, at: new Date().toISOString() }, null, 2));
  // Results files are read by the leak check too: they must not carry secrets either.
  observe(`results/${name}.json`, JSON.stringify(data));
}

/** Settles `promise` or reports it as pending after `ms`. */
async function within(promise, ms) {
  let timer;
  const started = performance.now();
  const pending = new Promise((resolve) => {
    timer = setTimeout(() => resolve({ pending: true }), ms);
  });
  const out = await Promise.race([
    Promise.resolve(promise).then(
      (value) => ({ value }),
      (error) => ({ error }),
    ),
    pending,
  ]);
  clearTimeout(timer);
  return { ...out, ms: performance.now() - started };
}

module.exports = { MARK, RESULTS, FULL, observe, recordingLogger, fingerprint, findLeaks, leaks, record, within, observed };
