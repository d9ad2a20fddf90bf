/** onnx TensorProto.DataType codes, their names, and the element types our decoders know. */
import type { ElementType } from '../readers/dtypes';

export const ONNX_TYPE_NAMES: Record<number, string> = {
  0: 'UNDEFINED',
  1: 'FLOAT',
  2: 'UINT8',
  3: 'INT8',
  4: 'UINT16',
  5: 'INT16',
  6: 'INT32',
  7: 'INT64',
  8: 'STRING',
  9: 'BOOL',
  10: 'FLOAT16',
  11: 'DOUBLE',
  12: 'UINT32',
  13: 'UINT64',
  14: 'COMPLEX64',
  15: 'COMPLEX128',
  16: 'BFLOAT16',
  17: 'FLOAT8E4M3FN',
  18: 'FLOAT8E4M3FNUZ',
  19: 'FLOAT8E5M2',
  20: 'FLOAT8E5M2FNUZ',
  21: 'UINT4',
  22: 'INT4',
  23: 'FLOAT4E2M1',
  24: 'FLOAT8E8M0',
  25: 'UINT2',
  26: 'INT2',
};

const ELEMENT_OF: Record<number, ElementType> = {
  1: 'F32',
  2: 'U8',
  3: 'I8',
  4: 'U16',
  5: 'I16',
  6: 'I32',
  7: 'I64',
  9: 'BOOL',
  10: 'F16',
  11: 'F64',
  12: 'U32',
  13: 'U64',
  16: 'BF16',
  17: 'F8_E4M3',
  18: 'F8_E4M3FNUZ',
  19: 'F8_E5M2',
  20: 'F8_E5M2FNUZ',
  21: 'U4',
  22: 'I4',
  23: 'F4',
  24: 'F8_E8M0',
};

export function onnxTypeName(code: number): string {
  return ONNX_TYPE_NAMES[code] ?? `type ${code}`;
}

/** The element type for raw little-endian data of this ONNX type, or null when not decodable. */
export function onnxElementType(code: number): ElementType | null {
  return ELEMENT_OF[code] ?? null;
}

/**
 * The typed-data field of TensorProto that holds values of this type when raw_data is not used:
 * float_data (4), int32_data (5: also 8- and 16-bit types and float16/bfloat16 bit patterns),
 * int64_data (7), double_data (10), uint64_data (11).
 */
export function typedFieldOf(code: number): number | null {
  switch (code) {
    case 1:
      return 4;
    case 2:
    case 3:
    case 4:
    case 5:
    case 6:
    case 9:
    case 10:
    case 16:
    case 17:
    case 18:
    case 19:
    case 20:
      return 5;
    case 7:
      return 7;
    case 11:
      return 10;
    case 12:
    case 13:
      return 11;
    default:
      return null;
  }
}
