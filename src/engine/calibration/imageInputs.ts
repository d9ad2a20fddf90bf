/**
 * Image folders as model inputs, with the PaddleOCR recognizer's preprocessing: each image is
 * resized (bilinear, aspect ratio kept) to the model's input height, scaled to [−1, 1] as
 * (v/255 − 0.5)/0.5, and right-padded with zeros to the batch's width (PaddleOCR pads the
 * normalized image with 0 too). Only PNG is decoded (fast-png); grayscale and palette images are
 * expanded to the model's channel count.
 *
 * Ground truth, when present, is `labels.txt` in the folder, in PaddleOCR's label format:
 * `<file name>\t<text>` per line.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { decode as decodePng } from 'fast-png';
import { QuantLensError } from '../errors';

export interface ImageItem {
  path: string;
  /** The ground-truth text from labels.txt, when the folder has one. */
  label?: string;
}

export const LABELS_FILE = 'labels.txt';

/** The PNG images of a folder in name order, with their labels when labels.txt exists. */
export function listImageFolder(folder: string): ImageItem[] {
  if (!existsSync(folder)) throw new QuantLensError('not-found', 'no such folder', folder);
  if (!statSync(folder).isDirectory())
    throw new QuantLensError('bad-argument', 'is not a folder of images (a text file needs --tokenizer)', folder);
  const files = readdirSync(folder)
    .filter((f) => /\.png$/i.test(f))
    .sort();
  if (files.length === 0) throw new QuantLensError('bad-argument', 'holds no PNG images', folder);
  const labels = new Map<string, string>();
  const labelPath = join(folder, LABELS_FILE);
  if (existsSync(labelPath)) {
    // A byte-order mark (Windows editors write one) would otherwise glue itself to the first name.
    readFileSync(labelPath, 'utf8')
      .replace(/^\uFEFF/, '')
      .split('\n')
      .forEach((line, i) => {
        if (!line.trim()) return;
        const tab = line.indexOf('\t');
        if (tab < 0) throw new QuantLensError('malformed', `line ${i + 1} is not "<file>\\t<text>"`, labelPath);
        const name = line.slice(0, tab).trim();
        const previous = labels.get(name);
        const text = line.slice(tab + 1).replace(/\r$/, '');
        if (previous !== undefined && previous !== text) {
          throw new QuantLensError('malformed', `line ${i + 1} labels ${name} a second time, differently`, labelPath);
        }
        labels.set(name, text);
      });
  }
  return files.map((f) => {
    const label = labels.get(f);
    return { path: join(folder, f), ...(label !== undefined ? { label } : {}) };
  });
}

/** A decoded image as planar float [channels, height, width] with values 0…255. */
export interface PlanarImage {
  width: number;
  height: number;
  channels: number;
  data: Float32Array;
}

/**
 * A PNG's pixels as planar float [channels, height, width] on the 0…255 scale, as an independent
 * decoder reads them (test/unit/calibration/png.test.ts checks every colour type and bit depth
 * against Pillow): a sample v of bit depth d is v·255/(2^d − 1), a palette index its colour,
 * alpha (and tRNS transparency) is dropped, not composited. fast-png decodes the file; rows of
 * 1, 2 and 4-bit samples come from it packed, as in the file, and are unpacked here.
 */
/** Decoded samples: `sample(y, x, c)` is channel c (a palette index for palette images) of a pixel. */
interface PngSamples {
  width: number;
  height: number;
  depth: number;
  perPixel: number;
  palette: number[][] | undefined;
  sample(y: number, x: number, c: number): number;
}

const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;

/**
 * Interlaced (Adam7) images of 1, 2 or 4-bit samples, which fast-png 8 cannot unfilter (it assumes
 * whole bytes per sample): chunks, inflate, unfilter each pass (one byte back for sub-byte depths)
 * and place its samples. Only gray and palette images have such depths.
 */
function decodeSubByteAdam7(bytes: Buffer, path: string): PngSamples {
  const width = bytes.readUInt32BE(16);
  const height = bytes.readUInt32BE(20);
  const depth = bytes[24]!;
  const colourType = bytes[25]!;
  const idat: Buffer[] = [];
  let palette: number[][] | undefined;
  for (let at = 8; at + 8 <= bytes.length;) {
    const length = bytes.readUInt32BE(at);
    const type = bytes.toString('latin1', at + 4, at + 8);
    const body = bytes.subarray(at + 8, at + 8 + length);
    if (type === 'IDAT') idat.push(body);
    else if (type === 'PLTE') {
      palette = [];
      for (let i = 0; i + 2 < body.length; i += 3) palette.push([body[i]!, body[i + 1]!, body[i + 2]!]);
    } else if (type === 'IEND') break;
    at += 12 + length;
  }
  let raw: Buffer;
  try {
    raw = inflateSync(Buffer.concat(idat));
  } catch (e) {
    throw new QuantLensError('malformed', `not a PNG image (${(e as Error).message})`, path);
  }
  const samples = new Uint8Array(width * height);
  const mask = (1 << depth) - 1;
  let offset = 0;
  for (const [x0, y0, dx, dy] of ADAM7) {
    const w = Math.ceil((width - x0) / dx);
    const h = Math.ceil((height - y0) / dy);
    if (w <= 0 || h <= 0) continue;
    const rowBytes = Math.ceil((w * depth) / 8);
    let prev = new Uint8Array(rowBytes);
    for (let y = 0; y < h; y++) {
      if (offset + 1 + rowBytes > raw.length)
        throw new QuantLensError('malformed', 'PNG image data is truncated', path);
      const filter = raw[offset]!;
      const line = new Uint8Array(raw.subarray(offset + 1, offset + 1 + rowBytes));
      offset += 1 + rowBytes;
      for (let i = 0; i < rowBytes; i++) {
        const a = i > 0 ? line[i - 1]! : 0;
        const b = prev[i]!;
        const c = i > 0 ? prev[i - 1]! : 0;
        let pred: number;
        switch (filter) {
          case 0:
            pred = 0;
            break;
          case 1:
            pred = a;
            break;
          case 2:
            pred = b;
            break;
          case 3:
            pred = (a + b) >> 1;
            break;
          case 4: {
            const p = a + b - c;
            const pa = Math.abs(p - a);
            const pb = Math.abs(p - b);
            const pc = Math.abs(p - c);
            pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
            break;
          }
          default:
            throw new QuantLensError('malformed', `PNG row filter ${filter} does not exist`, path);
        }
        line[i] = (line[i]! + pred) & 0xff;
      }
      for (let x = 0; x < w; x++) {
        const bit = x * depth;
        samples[(y0 + y * dy) * width + x0 + x * dx] = (line[bit >> 3]! >> (8 - depth - (bit & 7))) & mask;
      }
      prev = line;
    }
  }
  return {
    width,
    height,
    depth,
    perPixel: 1,
    palette: colourType === 3 ? palette : undefined,
    sample: (y, x) => samples[y * width + x]!,
  };
}

function decodeSamples(path: string): PngSamples {
  const bytes = readFileSync(path);
  const interlaced = bytes.length > 28 && bytes.toString('latin1', 12, 16) === 'IHDR' && bytes[28] === 1;
  if (interlaced && bytes[24]! < 8) return decodeSubByteAdam7(bytes, path);
  let png: ReturnType<typeof decodePng>;
  try {
    png = decodePng(bytes);
  } catch (e) {
    throw new QuantLensError('malformed', `not a PNG image (${(e as Error).message})`, path);
  }
  const { width, height, depth } = png;
  const palette = png.palette;
  // Samples per pixel in the data: an index for palette images.
  const perPixel = palette ? 1 : png.channels;
  const data = png.data;
  const rowBytes = Math.ceil((width * perPixel * depth) / 8);
  const expected = depth < 8 ? rowBytes * height : width * height * perPixel;
  if (data.length < expected) {
    throw new QuantLensError('malformed', `PNG data holds ${data.length} samples, ${expected} expected`, path);
  }
  const mask = (1 << depth) - 1;
  return {
    width,
    height,
    depth,
    perPixel,
    palette,
    sample: (y, x, c) => {
      if (depth >= 8) return data[(y * width + x) * perPixel + c]!;
      // Rows of 1, 2 and 4-bit samples come packed from fast-png, as in the file.
      const bit = (x * perPixel + c) * depth;
      return (data[y * rowBytes + (bit >> 3)]! >> (8 - depth - (bit & 7))) & mask;
    },
  };
}

/**
 * A PNG's pixels as planar float [channels, height, width] on the 0…255 scale, as an independent
 * decoder reads them (test/unit/calibration/png.test.ts checks every colour type and bit depth
 * against Pillow): a sample v of bit depth d is v·255/(2^d − 1), a palette index its colour,
 * alpha (and tRNS transparency) is dropped, not composited. fast-png decodes the file, but for
 * interlaced sub-byte images (decodeSubByteAdam7).
 */
export function readPng(path: string, channels: number): PlanarImage {
  const { width, height, depth, perPixel, palette, sample } = decodeSamples(path);
  const scale = 255 / (2 ** depth - 1);
  const plane = width * height;
  // The pixel as RGB (or one gray value) on 0…255.
  const rgb = new Float32Array(plane * 3);
  const colour = palette !== undefined || perPixel >= 3;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      if (palette) {
        const index = sample(y, x, 0);
        const entry = palette[index];
        if (!entry) {
          throw new QuantLensError(
            'malformed',
            `pixel (${x}, ${y}) uses palette entry ${index}; the palette has ${palette.length}`,
            path,
          );
        }
        rgb[3 * p] = entry[0] ?? 0;
        rgb[3 * p + 1] = entry[1] ?? 0;
        rgb[3 * p + 2] = entry[2] ?? 0;
      } else if (colour) {
        for (let c = 0; c < 3; c++) rgb[3 * p + c] = sample(y, x, c) * scale;
      } else {
        const g = sample(y, x, 0) * scale;
        rgb[3 * p] = g;
        rgb[3 * p + 1] = g;
        rgb[3 * p + 2] = g;
      }
    }
  }
  // Gray → replicated; a 1-channel model takes the mean of RGB; channels past 3 repeat the last.
  const out = new Float32Array(channels * plane);
  for (let p = 0; p < plane; p++) {
    if (channels === 1) {
      out[p] = colour ? (rgb[3 * p]! + rgb[3 * p + 1]! + rgb[3 * p + 2]!) / 3 : rgb[3 * p]!;
      continue;
    }
    for (let c = 0; c < channels; c++) out[c * plane + p] = rgb[3 * p + Math.min(c, 2)]!;
  }
  return { width, height, channels, data: out };
}

/** Bilinear resize with half-pixel centres (OpenCV's INTER_LINEAR, which PaddleOCR uses). */
export function resizeBilinear(img: PlanarImage, width: number, height: number): PlanarImage {
  if (width === img.width && height === img.height) return img;
  const out = new Float32Array(img.channels * width * height);
  const sx = img.width / width;
  const sy = img.height / height;
  const x0 = new Int32Array(width);
  const x1 = new Int32Array(width);
  const fx = new Float32Array(width);
  for (let x = 0; x < width; x++) {
    const s = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), img.width - 1);
    x0[x] = Math.floor(s);
    x1[x] = Math.min(x0[x]! + 1, img.width - 1);
    fx[x] = s - x0[x]!;
  }
  for (let c = 0; c < img.channels; c++) {
    const src = img.data.subarray(c * img.width * img.height);
    const dst = out.subarray(c * width * height);
    for (let y = 0; y < height; y++) {
      const s = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), img.height - 1);
      const y0 = Math.floor(s);
      const y1 = Math.min(y0 + 1, img.height - 1);
      const fy = s - y0;
      const r0 = y0 * img.width;
      const r1 = y1 * img.width;
      for (let x = 0; x < width; x++) {
        const a = src[r0 + x0[x]!]! + (src[r0 + x1[x]!]! - src[r0 + x0[x]!]!) * fx[x]!;
        const b = src[r1 + x0[x]!]! + (src[r1 + x1[x]!]! - src[r1 + x0[x]!]!) * fx[x]!;
        dst[y * width + x] = a + (b - a) * fy;
      }
    }
  }
  return { width, height, channels: img.channels, data: out };
}

export interface ImageBatchOptions {
  channels: number;
  height: number;
  /** A fixed input width (the model's, when static); otherwise the batch's widest image decides. */
  width: number | null;
  /** Cap on the width of a resized image (PaddleOCR's largest width-to-height ratio). */
  maxWidth: number;
  /** Batch widths are rounded up to a multiple of this (the recognizer downsamples by 8). */
  widthMultiple: number;
}

/** One batch tensor [N, C, H, W] from image files, normalized to [−1, 1] and zero-padded on the right. */
export function imageBatch(paths: string[], o: ImageBatchOptions): { data: Float32Array; dims: number[] } {
  const resized = paths.map((p) => {
    const img = readPng(p, o.channels);
    const limit = o.width ?? o.maxWidth;
    const w = Math.max(1, Math.min(limit, Math.ceil((o.height * img.width) / img.height)));
    return resizeBilinear(img, w, o.height);
  });
  const widest = Math.max(...resized.map((r) => r.width));
  const width = o.width ?? Math.ceil(widest / o.widthMultiple) * o.widthMultiple;
  const data = new Float32Array(paths.length * o.channels * o.height * width);
  resized.forEach((img, n) => {
    for (let c = 0; c < o.channels; c++) {
      for (let y = 0; y < o.height; y++) {
        const src = (c * o.height + y) * img.width;
        const dst = ((n * o.channels + c) * o.height + y) * width;
        for (let x = 0; x < img.width; x++) data[dst + x] = (img.data[src + x]! / 255 - 0.5) / 0.5;
      }
    }
  });
  return { data, dims: [paths.length, o.channels, o.height, width] };
}
