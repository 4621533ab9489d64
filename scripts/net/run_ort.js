// Run an ONNX model with onnxruntime-node on a raw float32 NCHW batch.
// usage: node run_ort.js MODEL.onnx INPUT.bin N OUTPUT.bin [SIZE [OUTDIM]]
//   INPUT.bin: N x 3 x SIZE x SIZE little-endian float32 (SIZE 360); OUTPUT.bin: N x OUTDIM
//   float32, whatever the model's output shape.
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
  const [model, input, nstr, output, sstr] = process.argv.slice(2);
  const n = parseInt(nstr, 10), size = parseInt(sstr || '360', 10);
  const buf = fs.readFileSync(input);
  const data = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const sess = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'], graphOptimizationLevel: 'all'});
  const feeds = {};
  feeds[sess.inputNames[0]] = new ort.Tensor('float32', data, [n, 3, size, size]);
  const res = await sess.run(feeds);
  const out = res[sess.outputNames[0]].data;
  fs.writeFileSync(output, Buffer.from(out.buffer, out.byteOffset, out.byteLength));
}
main().catch((e) => { console.error(e); process.exit(1); });
