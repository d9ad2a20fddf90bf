/**
 * Block-style YAML for the small documents Quant Lens writes (llm-compressor recipes). Strings are
 * written as JSON strings, which are valid YAML double-quoted scalars (the escapes \" \\ \n \uXXXX
 * mean the same in both), so no value can be misread as a number, a boolean or a tag.
 */
export type YamlValue = string | number | boolean | null | readonly YamlValue[] | { readonly [key: string]: YamlValue };

function scalar(v: string | number | boolean | null): string {
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`YAML: ${v} is not a finite number`);
    return String(v);
  }
  return JSON.stringify(v);
}

function key(k: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? k : JSON.stringify(k);
}

function isScalar(v: YamlValue): v is string | number | boolean | null {
  return v === null || typeof v !== 'object';
}

function lines(v: YamlValue, indent: string): string[] {
  if (isScalar(v)) return [`${indent}${scalar(v)}`];
  if (Array.isArray(v)) {
    const list = v as readonly YamlValue[];
    if (list.length === 0) return [`${indent}[]`];
    return list.flatMap((item) => {
      if (isScalar(item)) return [`${indent}- ${scalar(item)}`];
      const inner = lines(item, `${indent}  `);
      return [`${indent}- ${inner[0]!.trimStart()}`, ...inner.slice(1)];
    });
  }
  const entries = Object.entries(v as { readonly [key: string]: YamlValue });
  if (entries.length === 0) return [`${indent}{}`];
  return entries.flatMap(([k, item]) => {
    if (isScalar(item)) return [`${indent}${key(k)}: ${scalar(item)}`];
    if (Array.isArray(item) && item.length === 0) return [`${indent}${key(k)}: []`];
    if (!Array.isArray(item) && Object.keys(item).length === 0) return [`${indent}${key(k)}: {}`];
    return [`${indent}${key(k)}:`, ...lines(item, `${indent}  `)];
  });
}

/** The document, with `comment` lines (each prefixed "# ") on top. */
export function toYaml(value: YamlValue, comment: string[] = []): string {
  const notes = comment.flatMap((c) => c.split('\n')).map((c) => `# ${c}`.trimEnd());
  return [...notes, ...lines(value, '')].join('\n') + '\n';
}
