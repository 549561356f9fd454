// Builds the web UI into OUT (default dist/): app.js and app.css bundled by
// esbuild, index.html, and elk's layout worker (the lineage graph is laid out
// off the page's thread). `node build.mjs OUT_DIR`. No network at run time:
// every file the UI needs is in OUT, and the sluice binary embeds OUT.
import * as esbuild from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2] || join(here, 'dist');
mkdirSync(out, { recursive: true });

await esbuild.build({
  entryPoints: { app: join(here, 'src/main.jsx') },
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['chrome110', 'firefox110', 'safari16'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outdir: out,
  legalComments: 'none',
  logLevel: 'warning',
});

// Write through a temporary name, so a reader never sees half a file.
const put = (name, bytes) => {
  writeFileSync(join(out, name + '.tmp'), bytes);
  renameSync(join(out, name + '.tmp'), join(out, name));
};
put('index.html', readFileSync(join(here, 'src/index.html')));
put('theme.js', readFileSync(join(here, 'src/theme.js')));
put('icon.svg', readFileSync(join(here, 'src/icon.svg')));
copyFileSync(join(here, 'node_modules/elkjs/lib/elk-worker.min.js'), join(out, 'elk-worker.js'));
