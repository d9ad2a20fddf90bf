/**
 * The bulge chase in WebAssembly (wasm/assembly/bandChase.ts): bit for bit the JS kernel's
 * results, about 3.5× faster on one thread. Each thread instantiates the module once; the band is
 * copied into its memory, chased there a few sweeps per call (so that a cancel or another task on
 * the event loop can get in between), and copied back. Where WebAssembly cannot be instantiated,
 * or the thread's instance is busy with another chase, callers fall back to the JS kernel.
 */
import { WASM_BASE64 } from './wasm/generated/bandChase';
import type { StepClock } from './progress';

/** The parts of the WebAssembly JS API used here (this project's libs have no DOM types). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
}

interface ChaseExports {
  memory: WasmMemory;
  sweeps(band: number, n: number, b: number, ld: number, c0: number, c1: number, scratch: number): void;
}

/** Sweeps per call into the module: a few milliseconds at n = 4096. */
const SWEEPS_PER_CALL = 16;
const PAGE = 65536;

let instance: ChaseExports | null | undefined;
let busy = false;

function chaseModule(): ChaseExports | null {
  if (instance !== undefined) return instance;
  try {
    const api = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
    const module = new api.Module(Buffer.from(WASM_BASE64, 'base64'));
    instance = new api.Instance(module, {}).exports as ChaseExports;
  } catch {
    instance = null;
  }
  return instance;
}

/** Whether this thread can chase in WebAssembly (false where the module cannot be instantiated). */
export function wasmChaseAvailable(): boolean {
  return chaseModule() !== null;
}

/**
 * Runs every sweep of the chase on the band `data` (n columns of ld values, bandwidth b) in
 * WebAssembly, leaving the result in `data` as the JS kernel would. Returns false, with `data`
 * untouched, where the module is unavailable or already chasing on this thread.
 */
export async function chaseInWasm(
  data: Float64Array,
  n: number,
  b: number,
  ld: number,
  clock?: StepClock,
  onSweeps?: (done: number) => void,
): Promise<boolean> {
  const m = chaseModule();
  if (!m || busy) return false;
  busy = true;
  try {
    const values = n * ld;
    const scratch = values * 8;
    const bytes = scratch + 2 * b * 8;
    const have = m.memory.buffer.byteLength;
    if (bytes > have) m.memory.grow(Math.ceil((bytes - have) / PAGE));
    new Float64Array(m.memory.buffer, 0, values).set(data.subarray(0, values));
    for (let c0 = 0; c0 < n - 2; c0 += SWEEPS_PER_CALL) {
      const c1 = Math.min(n - 2, c0 + SWEEPS_PER_CALL);
      m.sweeps(0, n, b, ld, c0, c1, scratch);
      if (clock?.due()) {
        onSweeps?.(c1);
        await clock.tick();
      }
    }
    data.set(new Float64Array(m.memory.buffer, 0, values));
    return true;
  } finally {
    busy = false;
  }
}
