'use strict';
// `npm run config-schema`: compiles config.d.ts into config.schema.json with Backstage's own
// config loader (the same compiler `backstage-cli` uses), so a backend reads our schema as
// JSON instead of compiling TypeScript at every start. `--check` fails when the committed
// config.schema.json differs from what config.d.ts compiles to.

const fs = require('node:fs');
const path = require('node:path');
const { loadConfigSchema } = require('@backstage/config-loader');

const ROOT = path.resolve(__dirname, '..');
const OUT = path.join(ROOT, 'config.schema.json');

/** The JSON schema config.d.ts compiles to. */
async function compileConfigDts() {
  const dir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'config-schema-'));
  try {
    // A package whose configSchema is our .d.ts: config-loader compiles .d.ts schemas only.
    fs.copyFileSync(path.join(ROOT, 'config.d.ts'), path.join(dir, 'config.d.ts'));
    fs.writeFileSync(
      path.join(dir, 'package.json'),
      JSON.stringify({ name: 'config-schema-source', version: '0.0.0', configSchema: 'config.d.ts' }),
    );
    const schema = await loadConfigSchema({ dependencies: [], packagePaths: [path.join(dir, 'package.json')] });
    const { schemas } = schema.serialize();
    if (schemas.length !== 1) throw new Error(`expected one schema from config.d.ts, got ${schemas.length}`);
    return schemas[0].value;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  const text = JSON.stringify(await compileConfigDts(), null, 2) + '\n';
  if (process.argv.includes('--check')) {
    const committed = fs.existsSync(OUT) ? fs.readFileSync(OUT, 'utf8') : '';
    if (committed !== text) {
      console.error('config.schema.json is not what config.d.ts compiles to; run `npm run config-schema`');
      process.exitCode = 1;
      return;
    }
    console.log('config.schema.json matches config.d.ts');
    return;
  }
  fs.writeFileSync(OUT, text);
  console.log(`wrote ${path.relative(process.cwd(), OUT)}`);
}

if (require.main === module) {
  main().catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
}

module.exports = { compileConfigDts };
