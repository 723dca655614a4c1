#!/usr/bin/env node
// Turns the model bundled inside the nsfwjs npm package into a standard TF.js layers model.
//
//   node nsfwjs_to_tfjs.js PACKAGE_MODEL_DIR OUT_DIR
//
// nsfwjs (4.x) ships each model as browserify/UMD JavaScript modules, so bundlers can import
// them: PACKAGE_MODEL_DIR/model.min.js exports the model.json object itself
// ({modelTopology, weightsManifest}); each weight shard named in the manifest, e.g.
// "group1-shard1of1", is a module <shard>.min.js whose export is the shard's bytes as one
// base64 string. This writes OUT_DIR/model.json and OUT_DIR/<shard>.bin, with the manifest
// paths pointing at the .bin files.
'use strict';
const fs = require('fs');
const path = require('path');

function fail(msg) {
  process.stderr.write(`nsfwjs_to_tfjs: ${msg}\n`);
  process.exit(1);
}

function loadModule(file) {
  if (!fs.existsSync(file)) fail(`missing ${file}`);
  const m = require(path.resolve(file));
  // UMD modules export their value directly; ES-module interop may wrap it in .default.
  return m && typeof m === 'object' && 'default' in m && Object.keys(m).length === 1
    ? m.default : m;
}

function shardBytes(value, name) {
  if (typeof value === 'string') return Buffer.from(value, 'base64');
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return Buffer.from(value);
  if (value instanceof ArrayBuffer) return Buffer.from(new Uint8Array(value));
  fail(`shard ${name}: unexpected module export of type ${typeof value}`);
}

const [srcDir, outDir] = process.argv.slice(2);
if (!srcDir || !outDir) fail('usage: node nsfwjs_to_tfjs.js PACKAGE_MODEL_DIR OUT_DIR');

const model = loadModule(path.join(srcDir, 'model.min.js'));
if (!model || typeof model !== 'object' || !model.modelTopology || !model.weightsManifest)
  fail('model.min.js does not export a TF.js model.json object');

fs.mkdirSync(outDir, { recursive: true });
const out = JSON.parse(JSON.stringify(model));
let total = 0;
for (const group of out.weightsManifest) {
  group.paths = group.paths.map((p) => {
    const base = p.replace(/\.(min\.)?js$/, '');
    const bytes = shardBytes(loadModule(path.join(srcDir, `${base}.min.js`)), base);
    const file = `${base}.bin`;
    fs.writeFileSync(path.join(outDir, file), bytes);
    total += bytes.length;
    return file;
  });
}
// Sanity check: the shards must hold exactly what the manifest describes.
const sizes = { float32: 4, int32: 4, uint16: 2, uint8: 1, float16: 2, bool: 1 };
let expected = 0;
for (const group of out.weightsManifest) {
  for (const w of group.weights) {
    const n = w.shape.reduce((a, b) => a * b, 1);
    const dt = w.quantization ? w.quantization.dtype : w.dtype;
    if (!(dt in sizes)) fail(`weight ${w.name}: unknown dtype ${dt}`);
    expected += n * sizes[dt];
  }
}
if (expected !== total) fail(`shards hold ${total} bytes, the manifest describes ${expected}`);
fs.writeFileSync(path.join(outDir, 'model.json'), JSON.stringify(out));
console.log(`wrote ${path.join(outDir, 'model.json')} + ${out.weightsManifest.length} weight group(s), ${total} bytes`);
