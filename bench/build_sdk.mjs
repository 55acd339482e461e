// Builds static/portal.min.js, the file the script tag loads, from the readable static/portal.js.
// The banner carries the source's SHA-256 so a test can tell a stale build without node.
//   npm --prefix bench ci && node bench/build_sdk.mjs        (or: make sdk)
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { minify } from 'terser';

const root = new URL('../static/', import.meta.url);
const source = readFileSync(new URL('portal.js', root), 'utf8');
// 16 hex digits of SHA-256 tell a stale build apart; the full 64 would cost gzip bytes.
const sha = createHash('sha256').update(source).digest('hex').slice(0, 16);
const result = await minify(source, {
  ecma: 2020,
  toplevel: true,
  // unsafe / unsafe_methods: `Error(…)` for `new Error(…)`, methods for arrow-valued handlers
  // that never use `this` (the SDK's own built-ins only; 13 B).
  compress: { passes: 3, unsafe_arrows: true, pure_getters: true, unsafe: true, unsafe_methods: true },
  // Only the SDK's private per-instance state is named with a leading underscore.
  mangle: { properties: { regex: /^_/ } },
  format: { comments: false, preamble: `/*! Connect Portal SDK 0.1.0 | MIT | source sha256:${sha} */` },
});
writeFileSync(new URL('portal.min.js', root), result.code + '\n');
console.log(`static/portal.min.js: ${result.code.length} bytes`);
