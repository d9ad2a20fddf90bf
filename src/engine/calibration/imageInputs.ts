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

export function readPng(path: string, channels: number): PlanarImage {
  let png: ReturnType<typeof decodePng>;
  try {
    png = decodePng(readFileSync(path));
  } catch (e) {
    throw new QuantLensError('malformed', `not a PNG image (${(e as Error).message})`, path);
  }
  const { width, height } = png;
  const scale = png.depth === 16 ? 255 / 65535 : png.depth < 8 && !png.palette ? 255 / (2 ** png.depth - 1) : 1;
  const src = png.palette ? expandPalette(png.data, png.palette, png.depth, width, height) : png.data;
  const srcChannels = png.palette ? 3 : png.channels;
  // Gray(+alpha) → replicate; RGB(A) → drop alpha; a 1-channel model takes the mean of RGB.
  const colour = srcChannels >= 3 ? 3 : 1;
  const out = new Float32Array(channels * width * height);
  const plane = width * height;
  for (let p = 0; p < plane; p++) {
    const o = p * srcChannels;
    if (channels === 1 && colour === 3) {
      out[p] = ((src[o]! + src[o + 1]! + src[o + 2]!) / 3) * scale;
      continue;
    }
    for (let c = 0; c < channels; c++) out[c * plane + p] = src[o + (colour === 3 ? Math.min(c, 2) : 0)]! * scale;
  }
  return { width, height, channels, data: out };
}

function expandPalette(
  data: ArrayLike<number>,
  palette: number[][],
  depth: number,
  width: number,
  height: number,
): Uint8Array {
  const out = new Uint8Array(width * height * 3);
  const perByte = 8 / depth;
  const rowBytes = Math.ceil(width / perByte);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let index: number;
      if (depth === 8) index = data[y * width + x]!;
      else {
        const byte = data[y * rowBytes + Math.floor(x / perByte)]!;
        const shift = 8 - depth * ((x % perByte) + 1);
        index = (byte >> shift) & ((1 << depth) - 1);
      }
      const rgb = palette[index] ?? [0, 0, 0];
      out.set([rgb[0] ?? 0, rgb[1] ?? 0, rgb[2] ?? 0], (y * width + x) * 3);
    }
  }
  return out;
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
