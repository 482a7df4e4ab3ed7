'use strict';
// `npm run pack:local [-- <out-dir>]`: the two tarballs a release would publish for this
// machine (the main package and its platform package), made the way a release makes them, from
// the binary `npm run build` left in the repository root:
//   1. a staging copy of the package (package.json, its `files`, npm/<platform>/);
//   2. the binary goes where release CI downloads built binaries (artifacts/), and
//      `napi artifacts` (`npm run artifacts`) moves it into npm/<platform>/;
//   3. `napi pre-publish -t npm --no-gh-release --skip-optional-publish`: what the
//      `prepublishOnly` script runs on `npm publish`, minus publishing the platform packages:
//      it writes `optionalDependencies` (one per napi target) into the staged package.json;
//   4. `npm pack` in both folders.
// Nothing in the repository is modified. Prints the tarball paths as JSON.

const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const NAPI = path.join(ROOT, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js');

function run(cmd, args, cwd) {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
}

function npmPack(dir, outDir) {
  const out = run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', outDir], dir);
  const [info] = JSON.parse(out);
  return { file: path.join(outDir, info.filename), files: info.files.map((f) => f.path).sort() };
}

/**
 * @param {string} outDir where the tarballs go
 * @returns {{ main: {file: string, files: string[]}, platform: {file: string, files: string[]}, abi: string, packageJson: object }}
 */
function packLocal(outDir) {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const binaryName = pkg.napi.binaryName;
  const binaries = fs.readdirSync(ROOT).filter((f) => f.startsWith(`${binaryName}.`) && f.endsWith('.node'));
  if (binaries.length !== 1) {
    throw new Error(`expected one ${binaryName}.<platform>.node in ${ROOT} (run \`npm run build\`), found ${binaries.length}`);
  }
  const abi = binaries[0].slice(binaryName.length + 1, -'.node'.length);
  if (!fs.existsSync(path.join(ROOT, 'npm', abi, 'package.json'))) {
    throw new Error(`no platform package npm/${abi} for the local binary ${binaries[0]}`);
  }

  fs.mkdirSync(outDir, { recursive: true });
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'k8s-native-stage-'));
  try {
    fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(stage, 'package.json'));
    for (const file of pkg.files) fs.copyFileSync(path.join(ROOT, file), path.join(stage, file));
    for (const dir of fs.readdirSync(path.join(ROOT, 'npm'))) {
      fs.mkdirSync(path.join(stage, 'npm', dir), { recursive: true });
      for (const file of ['package.json', 'README.md']) {
        fs.copyFileSync(path.join(ROOT, 'npm', dir, file), path.join(stage, 'npm', dir, file));
      }
    }
    fs.mkdirSync(path.join(stage, 'artifacts', `bindings-${abi}`), { recursive: true });
    fs.copyFileSync(path.join(ROOT, binaries[0]), path.join(stage, 'artifacts', `bindings-${abi}`, binaries[0]));
    run(process.execPath, [NAPI, 'artifacts'], stage);
    // `napi artifacts` also leaves a copy in the package root; `files` must keep it out.
    run(process.execPath, [NAPI, 'pre-publish', '-t', 'npm', '--no-gh-release', '--skip-optional-publish'], stage);
    const packageJson = JSON.parse(fs.readFileSync(path.join(stage, 'package.json'), 'utf8'));
    const main = npmPack(stage, outDir);
    const platform = npmPack(path.join(stage, 'npm', abi), outDir);
    return { main, platform, abi, packageJson };
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

if (require.main === module) {
  const result = packLocal(path.resolve(process.argv[2] || path.join(ROOT, 'pack')));
  console.log(JSON.stringify({ main: result.main.file, platform: result.platform.file }, null, 2));
}

module.exports = { packLocal };
