/**
 * Runs in a fresh process (bundled by readers.ts): opens a checkpoint, lists its layers, reads
 * the named layers, and prints timings and memory as one JSON line. A separate process keeps the
 * memory figures free of the benchmark's own allocations.
 */
import { openCheckpoint } from '../../src/engine/readers/open';

const mb = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;
const maxRss = () => mb(process.resourceUsage().maxRSS * 1024);

async function main(): Promise<void> {
  const [path, ...layers] = process.argv.slice(2);
  if (!path) throw new Error('usage: probe <checkpoint> [layer ...]');
  const baseline = { rssMB: mb(process.memoryUsage().rss), maxRssMB: maxRss() };
  const t0 = performance.now();
  const ckpt = await openCheckpoint(path);
  const openMs = performance.now() - t0;
  const afterOpen = {
    rssMB: mb(process.memoryUsage().rss),
    maxRssMB: maxRss(),
    heapUsedMB: mb(process.memoryUsage().heapUsed),
  };
  const reads = [];
  for (const name of layers) {
    const before = maxRss();
    const r0 = performance.now();
    const w = await ckpt.readWeight(name);
    const ms = performance.now() - r0;
    reads.push({
      name,
      shape: [w.out, w.in],
      float32MB: mb(w.data.byteLength),
      ms: Math.round(ms),
      maxRssBeforeMB: before,
      maxRssAfterMB: maxRss(),
    });
  }
  const result = {
    path,
    format: ckpt.format,
    files: ckpt.files.length,
    bytesMB: mb(ckpt.files.reduce((a, f) => a + f.size, 0)),
    tensors: ckpt.tensors.length,
    linearLayers: ckpt.linearLayers.length,
    openMs: Math.round(openMs * 10) / 10,
    baseline,
    afterOpen,
    reads,
  };
  await ckpt.close();
  process.stdout.write(JSON.stringify(result) + '\n');
}

void main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exitCode = 1;
});
