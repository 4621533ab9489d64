// onnxruntime-node worker for the nnhash.py-style peer of bench/pipeline.sh.
// usage: node ort_worker.js MODEL.onnx THREADS
// stdin: frames of [u32 n][n x 3 x 360 x 360 float32]; stdout: [n x 128 float32] per frame.
'use strict';
const ort = require('onnxruntime-node');

async function main() {
  const [model, ts] = process.argv.slice(2);
  const sess = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'], graphOptimizationLevel: 'all',
    intraOpNumThreads: parseInt(ts, 10), interOpNumThreads: 1});
  const img = 3 * 360 * 360 * 4;
  let buf = Buffer.alloc(0);
  let busy = Promise.resolve();
  process.stdin.on('data', (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      if (buf.length < 4) return;
      const n = buf.readUInt32LE(0);
      if (buf.length < 4 + n * img) return;
      const frame = buf.subarray(4, 4 + n * img);
      buf = buf.subarray(4 + n * img);
      const data = new Float32Array(frame.buffer.slice(frame.byteOffset, frame.byteOffset + frame.length));
      busy = busy.then(async () => {
        const feeds = {};
        feeds[sess.inputNames[0]] = new ort.Tensor('float32', data, [n, 3, 360, 360]);
        const out = await sess.run(feeds);
        const o = out[sess.outputNames[0]].data;
        process.stdout.write(Buffer.from(o.buffer, o.byteOffset, o.byteLength));
      });
    }
  });
  process.stdin.on('end', () => { busy.then(() => process.exit(0)); });
}
main().catch((e) => { console.error(e); process.exit(1); });
