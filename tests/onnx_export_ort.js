// onnx_export_ort.js — runs an ONNX model in onnxruntime-node (an independent runtime) on one
// .npy input and compares its first output with a .npy reference.  Used by test_onnx_export.
// usage: node onnx_export_ort.js ORT_MODULE_DIR MODEL.onnx X.npy WANT.npy TOL
const ort = require(process.argv[2]);
const fs = require('fs');
function readNpy(p) {
  const b = fs.readFileSync(p); const hl = b.readUInt16LE(8); const h = b.toString('latin1', 10, 10 + hl);
  const shape = h.match(/'shape': \(([^)]*)\)/)[1].split(',').filter(s => s.trim()).map(Number);
  const off = 10 + hl; return { shape, data: new Float32Array(b.buffer.slice(b.byteOffset + off, b.byteOffset + b.length)) };
}
(async () => {
  const x = readNpy(process.argv[4]);
  const s = await ort.InferenceSession.create(process.argv[3]);
  const feeds = {}; feeds[s.inputNames[0]] = new ort.Tensor('float32', x.data, x.shape);
  const out = await s.run(feeds);
  const y = out[s.outputNames[0]].data, want = readNpy(process.argv[5]).data;
  let m = 0; for (let i = 0; i < want.length; i++) m = Math.max(m, Math.abs(y[i] - want[i]));
  console.log(`ort: ${y.length} values, max abs err ${m}`);
  process.exit(y.length === want.length && m <= Number(process.argv[6]) ? 0 : 1);
})().catch(e => { console.error('ort error: ' + e.message); process.exit(1); });
