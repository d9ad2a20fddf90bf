/**
 * A restricted unpickler for PyTorch state dicts. Python's pickle is a program: GLOBAL names any
 * callable and REDUCE calls it, which is how a malicious checkpoint runs os.system. This
 * interpreter executes nothing. It understands the opcodes that torch.save emits and resolves
 * GLOBAL only against a short list of names a state dict needs (tensor rebuild functions, storage
 * classes, dtypes, OrderedDict); each of those is modelled here as data. Any other name stops the
 * load with an 'unsafe' error before anything further is read.
 */
import { QuantLensError } from '../../errors';

export class PyTuple {
  constructor(readonly items: PyValue[]) {}
}
export class PyList {
  constructor(readonly items: PyValue[]) {}
}
export class PyDict {
  readonly entries: [PyValue, PyValue][] = [];
  /** State set by BUILD (an OrderedDict's _metadata); kept, not interpreted. */
  state: PyValue = null;
}
/** A name from the whitelist, not yet called. */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}
/** A storage named by a persistent id: ('storage', <storage class>, key, location, numel). */
export class StorageRef {
  constructor(
    readonly key: string,
    /** torch dtype name ('float32', …) for typed storages; null for UntypedStorage (dtype comes with the tensor). */
    readonly dtype: string | null,
    readonly location: string,
    /** Elements for typed storages, bytes for UntypedStorage. */
    readonly numel: number,
  ) {}
}
export class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly dtype: string,
    readonly storageOffset: number,
    readonly size: number[],
    readonly stride: number[],
  ) {}
}

export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyTuple
  | PyList
  | PyDict
  | PyGlobal
  | StorageRef
  | TensorRef;

/** Legacy storage classes and the dtype each holds. */
const STORAGE_CLASSES: Record<string, string> = {
  FloatStorage: 'float32',
  DoubleStorage: 'float64',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
  ComplexFloatStorage: 'complex64',
  ComplexDoubleStorage: 'complex128',
};

export const TORCH_DTYPES = new Set([
  'float32',
  'float',
  'float64',
  'double',
  'float16',
  'half',
  'bfloat16',
  'int64',
  'long',
  'int32',
  'int',
  'int16',
  'short',
  'int8',
  'uint8',
  'uint16',
  'uint32',
  'uint64',
  'bool',
  'float8_e4m3fn',
  'float8_e5m2',
  'float8_e4m3fnuz',
  'float8_e5m2fnuz',
  'float8_e8m0fnu',
  'float4_e2m1fn_x2',
  'complex64',
  'complex128',
]);

const REBUILDERS = new Set([
  'torch._utils._rebuild_tensor',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_tensor_v3',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
  'collections.OrderedDict',
  '_codecs.encode',
]);

/** Whether a GLOBAL is one a state dict needs. */
export function isAllowedGlobal(module: string, name: string): boolean {
  if (REBUILDERS.has(`${module}.${name}`)) return true;
  if (module === 'torch' && (Object.hasOwn(STORAGE_CLASSES, name) || TORCH_DTYPES.has(name))) return true;
  return module === 'torch.storage' && name === 'UntypedStorage';
}

const OP = {
  MARK: 0x28,
  STOP: 0x2e,
  POP: 0x30,
  POP_MARK: 0x31,
  DUP: 0x32,
  BINFLOAT: 0x47,
  BININT: 0x4a,
  BININT1: 0x4b,
  BININT2: 0x4d,
  NONE: 0x4e,
  BINPERSID: 0x51,
  REDUCE: 0x52,
  BINSTRING: 0x54,
  SHORT_BINSTRING: 0x55,
  BINUNICODE: 0x58,
  APPEND: 0x61,
  BUILD: 0x62,
  GLOBAL: 0x63,
  DICT: 0x64,
  APPENDS: 0x65,
  BINGET: 0x68,
  LONG_BINGET: 0x6a,
  LIST: 0x6c,
  BINPUT: 0x71,
  LONG_BINPUT: 0x72,
  SETITEM: 0x73,
  TUPLE: 0x74,
  SETITEMS: 0x75,
  EMPTY_DICT: 0x7d,
  EMPTY_LIST: 0x5d,
  EMPTY_TUPLE: 0x29,
  BINBYTES: 0x42,
  SHORT_BINBYTES: 0x43,
  PROTO: 0x80,
  NEWOBJ: 0x81,
  TUPLE1: 0x85,
  TUPLE2: 0x86,
  TUPLE3: 0x87,
  NEWTRUE: 0x88,
  NEWFALSE: 0x89,
  LONG1: 0x8a,
  LONG4: 0x8b,
  SHORT_BINUNICODE: 0x8c,
  BINUNICODE8: 0x8d,
  BINBYTES8: 0x8e,
  EMPTY_SET: 0x8f,
  ADDITEMS: 0x90,
  FROZENSET: 0x91,
  STACK_GLOBAL: 0x93,
  MEMOIZE: 0x94,
  FRAME: 0x95,
  BYTEARRAY8: 0x96,
} as const;

/** Opcodes that exist in pickle but never in a state dict; named in the error for clarity. */
const REFUSED: Record<number, string> = {
  0x69: 'INST',
  0x6f: 'OBJ',
  0x82: 'EXT1',
  0x83: 'EXT2',
  0x84: 'EXT4',
  0x92: 'NEWOBJ_EX',
  0x50: 'PERSID',
  0x97: 'NEXT_BUFFER',
  0x98: 'READONLY_BUFFER',
};

const MARK = Symbol('mark');
type Slot = PyValue | typeof MARK;

export class Unpickler {
  private pos = 0;
  private readonly stack: Slot[] = [];
  private readonly memo = new Map<number, PyValue>();
  private readonly utf8 = new TextDecoder('utf-8');
  private readonly latin1 = new TextDecoder('latin1');

  constructor(
    private readonly data: Uint8Array,
    /** Names the file in errors. */
    private readonly path: string,
    private readonly what = 'data.pkl',
  ) {}

  private fail(why: string): never {
    throw new QuantLensError('malformed', `${this.what}: ${why} (at byte ${this.pos})`, this.path);
  }

  private need(n: number): number {
    if (n < 0 || this.pos + n > this.data.length) this.fail('pickle ends unexpectedly');
    const at = this.pos;
    this.pos += n;
    return at;
  }

  private u8(): number {
    return this.data[this.need(1)]!;
  }

  private view(n: number): DataView {
    const at = this.need(n);
    return new DataView(this.data.buffer, this.data.byteOffset + at, n);
  }

  private bytes(n: number): Uint8Array {
    const at = this.need(n);
    return this.data.subarray(at, at + n);
  }

  private u64len(): number {
    const v = this.view(8).getBigUint64(0, true);
    if (v > BigInt(this.data.length)) this.fail(`length ${v} exceeds the pickle`);
    return Number(v);
  }

  private line(): string {
    const end = this.data.indexOf(0x0a, this.pos);
    if (end < 0 || end - this.pos > 1024) this.fail('unterminated name in GLOBAL');
    const s = this.latin1.decode(this.data.subarray(this.pos, end));
    this.pos = end + 1;
    return s;
  }

  private pop(): PyValue {
    const v = this.stack.pop();
    if (v === undefined || v === MARK) this.fail('stack underflow');
    return v;
  }

  private top(): PyValue {
    const v = this.stack[this.stack.length - 1];
    if (v === undefined || v === MARK) this.fail('stack underflow');
    return v;
  }

  private popMark(): PyValue[] {
    const i = this.stack.lastIndexOf(MARK);
    if (i < 0) this.fail('no MARK on the stack');
    const items = this.stack.splice(i);
    items.shift();
    return items as PyValue[];
  }

  private global(module: string, name: string): PyGlobal {
    if (!isAllowedGlobal(module, name)) {
      throw new QuantLensError(
        'unsafe',
        `${this.what} references ${module}.${name}, which a state dict does not need; refused (nothing was executed)`,
        this.path,
      );
    }
    return new PyGlobal(module, name);
  }

  private long(bytes: Uint8Array): number | bigint {
    if (bytes.length === 0) return 0;
    let v = 0n;
    for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!);
    if (bytes[bytes.length - 1]! & 0x80) v -= 1n << BigInt(8 * bytes.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }

  load(): PyValue {
    const d = this.data;
    while (true) {
      if (this.pos >= d.length) this.fail('pickle ends without STOP');
      const op = this.u8();
      switch (op) {
        case OP.PROTO:
          if (this.u8() > 5) this.fail('pickle protocol newer than 5');
          break;
        case OP.FRAME:
          this.u64len();
          break;
        case OP.STOP:
          return this.pop();
        case OP.MARK:
          this.stack.push(MARK);
          break;
        case OP.POP:
          if (this.stack.pop() === undefined) this.fail('stack underflow');
          break;
        case OP.POP_MARK:
          this.popMark();
          break;
        case OP.DUP:
          this.stack.push(this.top());
          break;
        case OP.NONE:
          this.stack.push(null);
          break;
        case OP.NEWTRUE:
          this.stack.push(true);
          break;
        case OP.NEWFALSE:
          this.stack.push(false);
          break;
        case OP.BININT:
          this.stack.push(this.view(4).getInt32(0, true));
          break;
        case OP.BININT1:
          this.stack.push(this.u8());
          break;
        case OP.BININT2:
          this.stack.push(this.view(2).getUint16(0, true));
          break;
        case OP.LONG1:
          this.stack.push(this.long(this.bytes(this.u8())));
          break;
        case OP.LONG4: {
          const n = this.view(4).getInt32(0, true);
          if (n > 1024) this.fail(`integer of ${n} bytes`);
          this.stack.push(this.long(this.bytes(n)));
          break;
        }
        case OP.BINFLOAT:
          this.stack.push(this.view(8).getFloat64(0, false));
          break;
        case OP.BINUNICODE:
          this.stack.push(this.utf8.decode(this.bytes(this.view(4).getUint32(0, true))));
          break;
        case OP.SHORT_BINUNICODE:
          this.stack.push(this.utf8.decode(this.bytes(this.u8())));
          break;
        case OP.BINUNICODE8:
          this.stack.push(this.utf8.decode(this.bytes(this.u64len())));
          break;
        case OP.BINSTRING:
          this.stack.push(this.latin1.decode(this.bytes(this.view(4).getInt32(0, true))));
          break;
        case OP.SHORT_BINSTRING:
          this.stack.push(this.latin1.decode(this.bytes(this.u8())));
          break;
        case OP.BINBYTES:
          this.stack.push(this.bytes(this.view(4).getUint32(0, true)).slice());
          break;
        case OP.SHORT_BINBYTES:
          this.stack.push(this.bytes(this.u8()).slice());
          break;
        case OP.BINBYTES8:
        case OP.BYTEARRAY8:
          this.stack.push(this.bytes(this.u64len()).slice());
          break;
        case OP.EMPTY_TUPLE:
          this.stack.push(new PyTuple([]));
          break;
        case OP.TUPLE:
          this.stack.push(new PyTuple(this.popMark()));
          break;
        case OP.TUPLE1: {
          const a = this.pop();
          this.stack.push(new PyTuple([a]));
          break;
        }
        case OP.TUPLE2: {
          const b = this.pop();
          const a = this.pop();
          this.stack.push(new PyTuple([a, b]));
          break;
        }
        case OP.TUPLE3: {
          const c = this.pop();
          const b = this.pop();
          const a = this.pop();
          this.stack.push(new PyTuple([a, b, c]));
          break;
        }
        case OP.EMPTY_LIST:
        case OP.EMPTY_SET:
          this.stack.push(new PyList([]));
          break;
        case OP.LIST:
        case OP.FROZENSET:
          this.stack.push(new PyList(this.popMark()));
          break;
        case OP.APPEND: {
          const v = this.pop();
          this.list(this.top()).push(v);
          break;
        }
        case OP.APPENDS:
        case OP.ADDITEMS: {
          const items = this.popMark();
          const list = this.list(this.top());
          for (const item of items) list.push(item);
          break;
        }
        case OP.EMPTY_DICT:
          this.stack.push(new PyDict());
          break;
        case OP.DICT: {
          const items = this.popMark();
          const dict = new PyDict();
          this.setItems(dict, items);
          this.stack.push(dict);
          break;
        }
        case OP.SETITEM: {
          const v = this.pop();
          const k = this.pop();
          this.dict(this.top()).entries.push([k, v]);
          break;
        }
        case OP.SETITEMS: {
          const items = this.popMark();
          this.setItems(this.dict(this.top()), items);
          break;
        }
        case OP.BINPUT:
          this.memo.set(this.u8(), this.top());
          break;
        case OP.LONG_BINPUT:
          this.memo.set(this.view(4).getUint32(0, true), this.top());
          break;
        case OP.MEMOIZE:
          this.memo.set(this.memo.size, this.top());
          break;
        case OP.BINGET:
          this.stack.push(this.memoGet(this.u8()));
          break;
        case OP.LONG_BINGET:
          this.stack.push(this.memoGet(this.view(4).getUint32(0, true)));
          break;
        case OP.GLOBAL: {
          const module = this.line();
          const name = this.line();
          this.stack.push(this.global(module, name));
          break;
        }
        case OP.STACK_GLOBAL: {
          const name = this.pop();
          const module = this.pop();
          if (typeof module !== 'string' || typeof name !== 'string') this.fail('STACK_GLOBAL needs two strings');
          this.stack.push(this.global(module, name));
          break;
        }
        case OP.BINPERSID:
          this.stack.push(this.persistent(this.pop()));
          break;
        case OP.REDUCE:
        case OP.NEWOBJ: {
          const args = this.pop();
          const callable = this.pop();
          if (!(callable instanceof PyGlobal) || !(args instanceof PyTuple))
            this.fail('REDUCE of something not callable');
          this.stack.push(this.call(callable, args.items));
          break;
        }
        case OP.BUILD: {
          const state = this.pop();
          const target = this.top();
          // Only OrderedDict (its _metadata) and tensors (_rebuild_parameter_with_state) receive state.
          if (target instanceof PyDict) target.state = state;
          else if (!(target instanceof TensorRef)) this.fail('BUILD on an object a state dict does not have');
          break;
        }
        default: {
          const name = REFUSED[op];
          if (name) {
            throw new QuantLensError(
              'unsafe',
              `${this.what}: pickle opcode ${name} is not used by state dicts; refused`,
              this.path,
            );
          }
          this.pos--;
          this.fail(`unknown or unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')}`);
        }
      }
    }
  }

  private memoGet(i: number): PyValue {
    const v = this.memo.get(i);
    if (v === undefined) this.fail(`memo entry ${i} was never stored`);
    return v;
  }

  private list(v: PyValue): PyValue[] {
    if (!(v instanceof PyList)) this.fail('APPEND to something that is not a list');
    return v.items;
  }

  private dict(v: PyValue): PyDict {
    if (!(v instanceof PyDict)) this.fail('SETITEM on something that is not a dict');
    return v;
  }

  private setItems(dict: PyDict, items: PyValue[]): void {
    if (items.length % 2) this.fail('odd number of items for a dict');
    for (let i = 0; i < items.length; i += 2) dict.entries.push([items[i]!, items[i + 1]!]);
  }

  private int(v: PyValue | undefined, what: string): number {
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) this.fail(`${what} is not an integer`);
    return v;
  }

  private ints(v: PyValue | undefined, what: string): number[] {
    const items = v instanceof PyTuple || v instanceof PyList ? v.items : this.fail(`${what} is not a tuple`);
    if (items.length > 64) this.fail(`${what} has ${items.length} dims`);
    return items.map((x) => this.int(x, what));
  }

  private persistent(pid: PyValue): StorageRef {
    if (!(pid instanceof PyTuple) || pid.items.length !== 5 || pid.items[0] !== 'storage') {
      this.fail('persistent id is not a storage reference');
    }
    const [, cls, key, location, numel] = pid.items;
    if (!(cls instanceof PyGlobal) || typeof key !== 'string' || typeof location !== 'string') {
      this.fail('malformed storage reference');
    }
    if (!/^[\w.-]{1,64}$/.test(key)) this.fail(`storage key "${key.slice(0, 80)}" is not a plain name`);
    const dtype = cls.name === 'UntypedStorage' ? null : (STORAGE_CLASSES[cls.name] ?? null);
    if (cls.name !== 'UntypedStorage' && dtype === null) this.fail(`${cls.qualified} is not a storage class`);
    return new StorageRef(key, dtype, location, this.int(numel, 'storage size'));
  }

  /** What calling a whitelisted name would build, modelled as data. */
  private call(fn: PyGlobal, args: PyValue[]): PyValue {
    switch (fn.qualified) {
      case 'collections.OrderedDict':
        if (args.length !== 0) this.fail('OrderedDict with arguments');
        return new PyDict();
      case 'torch._utils._rebuild_tensor':
      case 'torch._utils._rebuild_tensor_v2':
      case 'torch._utils._rebuild_tensor_v3': {
        const [storage, offset, size, stride] = args;
        if (!(storage instanceof StorageRef)) this.fail(`${fn.name} without a storage`);
        let dtype = storage.dtype;
        if (fn.name === '_rebuild_tensor_v3') {
          const d = args[6];
          if (!(d instanceof PyGlobal) || d.module !== 'torch' || !TORCH_DTYPES.has(d.name))
            this.fail('_rebuild_tensor_v3 without a dtype');
          dtype = d.name;
        }
        if (dtype === null) this.fail('an untyped storage without a dtype');
        return new TensorRef(
          storage,
          dtype,
          this.int(offset, 'storage offset'),
          this.ints(size, 'size'),
          this.ints(stride, 'stride'),
        );
      }
      case 'torch._utils._rebuild_parameter':
      case 'torch._utils._rebuild_parameter_with_state': {
        const t = args[0];
        if (!(t instanceof TensorRef)) this.fail('_rebuild_parameter without a tensor');
        return t;
      }
      case '_codecs.encode': {
        // Protocol 2 pickles bytes as _codecs.encode(str, 'latin1').
        const [s, enc] = args;
        if (typeof s !== 'string' || (enc !== 'latin1' && enc !== 'latin-1'))
          this.fail('_codecs.encode other than latin1');
        return Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);
      }
      default:
        // Storage classes and dtypes are names, not functions a state dict calls.
        throw new QuantLensError(
          'unsafe',
          `${this.what}: a pickle calls ${fn.qualified}; refused (nothing was executed)`,
          this.path,
        );
    }
  }
}

export interface FoundTensor {
  name: string;
  tensor: TensorRef;
}

/**
 * The tensors of an unpickled object with dotted names: a state dict's keys, or nested dicts
 * ({"model": {...}, "optimizer": {...}}) flattened. Walks iteratively with a depth cap so a crafted
 * pickle (deep nesting, cycles through the memo) cannot exhaust the stack.
 */
export function collectTensors(root: PyValue): FoundTensor[] {
  const out: FoundTensor[] = [];
  const seen = new Set<PyValue>();
  const work: [PyValue, string, number][] = [[root, '', 0]];
  while (work.length) {
    const [v, prefix, depth] = work.pop()!;
    if (v instanceof TensorRef) {
      out.push({ name: prefix, tensor: v });
      continue;
    }
    if (depth > 32 || seen.has(v)) continue;
    const join = (k: PyValue) => (prefix ? `${prefix}.${String(k)}` : String(k));
    if (v instanceof PyDict) {
      seen.add(v);
      for (let i = v.entries.length - 1; i >= 0; i--) {
        const [k, x] = v.entries[i]!;
        if (typeof k === 'string' || typeof k === 'number') work.push([x, join(k), depth + 1]);
      }
    } else if (v instanceof PyList || v instanceof PyTuple) {
      seen.add(v);
      for (let i = v.items.length - 1; i >= 0; i--) work.push([v.items[i]!, join(i), depth + 1]);
    }
  }
  return out;
}
