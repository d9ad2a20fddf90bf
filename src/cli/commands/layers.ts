/** `quant-lens layers <checkpoint>`: the linear layers with [out, in] shapes, dtype and source file. */
import { relative } from 'node:path';
import type { Checkpoint, LinearLayer } from '../../engine/readers/checkpoint';
import { openCheckpoint } from '../../engine/readers/open';
import { CHECKPOINT_READERS } from '../../engine/readers/registry';
import { parse, requirePositional } from '../args';
import { formatTable } from '../table';

export const layersHelp = `quant-lens layers <checkpoint> [--json] [--all] [--check] [--metadata] [--tensors]
  Lists the linear layers of a checkpoint in [out, in] orientation, grouped by block.
  <checkpoint> is a checkpoint file or a folder holding one. Readers:
  ${CHECKPOINT_READERS.map((r) => r.label).join(', ')}.
  --json       one JSON document: format, architecture, files, metadata, warnings, layers
  --all        include layers not quantized by default (embeddings, lm_head, routers, …)
  --check      read every listed layer and report NaN / Inf values per layer
  --metadata   print the checkpoint's metadata (safetensors __metadata__, GGUF keys, …)
  --tensors    print every tensor, not only linear layers`;

function fileLabel(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') ? rel : path;
}

interface Check {
  nan: number;
  inf: number;
}

async function checkLayers(ckpt: Checkpoint, layers: LinearLayer[]): Promise<Map<string, Check | string>> {
  const out = new Map<string, Check | string>();
  for (const l of layers) {
    try {
      const w = await ckpt.readWeight(l.name);
      out.set(l.name, w.nonFinite ?? { nan: 0, inf: 0 });
    } catch (e) {
      out.set(l.name, (e as Error).message);
    }
  }
  return out;
}

function checkCell(c: Check | string | undefined): string {
  if (c === undefined) return '';
  if (typeof c === 'string') return 'unreadable';
  return c.nan || c.inf ? `${c.nan} NaN, ${c.inf} Inf` : 'finite';
}

export async function layersCommand(argv: string[], out: NodeJS.WritableStream): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      json: { type: 'boolean' },
      all: { type: 'boolean' },
      check: { type: 'boolean' },
      metadata: { type: 'boolean' },
      tensors: { type: 'boolean' },
    },
    ['<checkpoint>'],
  );
  const path = requirePositional(positionals, 0, 'checkpoint path');
  const ckpt = await openCheckpoint(path);
  try {
    const layers = ckpt.linearLayers.filter((l) => values.all || l.quantizedByDefault);
    const checks = values.check ? await checkLayers(ckpt, layers) : undefined;
    if (values.json) {
      const doc = {
        format: ckpt.format,
        path: ckpt.path,
        architecture: ckpt.architecture,
        family: ckpt.family ?? null,
        files: ckpt.files,
        metadata: ckpt.metadata,
        warnings: ckpt.warnings ?? [],
        tensorCount: ckpt.tensors.length,
        layers: layers.map((l) => ({ ...l, ...(checks ? { check: checks.get(l.name) } : {}) })),
        ...(values.tensors ? { tensors: ckpt.tensors } : {}),
      };
      out.write(JSON.stringify(doc, null, 2) + '\n');
      return 0;
    }
    const arch = ckpt.architecture ?? (ckpt.family ? `${ckpt.family} (from tensor names)` : 'unknown');
    const hidden = ckpt.linearLayers.length - layers.length;
    out.write(
      `${ckpt.format} checkpoint ${path}: architecture ${arch}; ${ckpt.files.length} file(s), ${ckpt.tensors.length} tensors, ` +
        `${ckpt.linearLayers.length} linear layers${hidden ? ` (${hidden} not quantized by default; --all lists them)` : ''}\n`,
    );
    for (const w of ckpt.warnings ?? []) out.write(`warning: ${w}\n`);
    if (values.metadata) {
      for (const [k, v] of Object.entries(ckpt.metadata))
        out.write(`  ${k}: ${v.length > 200 ? v.slice(0, 200) + '…' : v}\n`);
    }
    const rows: string[][] = [];
    let lastBlock: number | null | undefined;
    for (const l of layers) {
      if (l.block !== lastBlock && l.block !== null) rows.push([`block ${l.block}`, '', '', '', '', '', '']);
      lastBlock = l.block;
      const row = [
        l.block === null ? l.name : `  ${l.name}`,
        `${l.shape[0]}×${l.shape[1]}`,
        l.dtype,
        l.role,
        l.quantizedByDefault ? 'yes' : 'no',
        l.storedTransposed ? '[in,out]' : '[out,in]',
        fileLabel(l.file),
      ];
      if (checks) row.push(checkCell(checks.get(l.name)));
      rows.push(row);
    }
    const header = ['layer', '[out×in]', 'dtype', 'role', 'quantized', 'stored', 'file'];
    if (checks) header.push('values');
    out.write(formatTable(header, rows) + '\n');
    if (values.tensors) {
      out.write('\n');
      out.write(
        formatTable(
          ['tensor', 'shape', 'dtype', 'bytes', 'file'],
          ckpt.tensors.map((t) => [
            t.name,
            `[${t.shape.join(', ')}]`,
            t.dtype,
            String(t.byteLength),
            fileLabel(t.file),
          ]),
        ) + '\n',
      );
    }
    if (checks) {
      for (const [name, c] of checks) if (typeof c === 'string') out.write(`error: ${name}: ${c}\n`);
    }
    return 0;
  } finally {
    await ckpt.close();
  }
}
