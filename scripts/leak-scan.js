#!/usr/bin/env node
'use strict';
// Runs a command, passes its stdout and stderr through, and fails if either carried the
// secret marker: every secret used in the tests contains `LEAKCANARY`, so the marker in any
// output (a log line, an error message, a test's report) is a secret that got out.
// Usage: node scripts/leak-scan.js <command> [args...]

const { spawn } = require('node:child_process');

const MARK = 'LEAKCANARY';

/** Runs `cmd args` with output passed through; resolves to { code, signal, output }. */
function runScanned(cmd, args, options = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['inherit', 'pipe', 'pipe'], ...options });
    const chunks = [];
    child.stdout.on('data', (d) => {
      chunks.push(d);
      process.stdout.write(d);
    });
    child.stderr.on('data', (d) => {
      chunks.push(d);
      process.stderr.write(d);
    });
    child.on('exit', (code, signal) => resolve({ code, signal, output: Buffer.concat(chunks).toString('utf8') }));
  });
}

/** Lines of `text` that carry the marker, shortened around it. */
function markerLines(text) {
  return text
    .split('\n')
    .filter((l) => l.includes(MARK))
    .map((l) => {
      const i = l.indexOf(MARK);
      return l.slice(Math.max(0, i - 100), i + 40);
    });
}

module.exports = { runScanned, markerLines, MARK };

if (require.main === module) {
  const [cmd, ...args] = process.argv.slice(2);
  runScanned(cmd, args).then(({ code, signal, output }) => {
    const leaked = markerLines(output);
    if (leaked.length) {
      console.error(`\nleak-scan: the secret marker ${MARK} appeared ${leaked.length} time(s) in the output:`);
      for (const l of leaked.slice(0, 20)) console.error(`  ${l}`);
      process.exit(1);
    }
    console.error(`leak-scan: 0 secret markers in ${output.length} characters of output`);
    process.exit(signal ? 1 : code);
  });
}
