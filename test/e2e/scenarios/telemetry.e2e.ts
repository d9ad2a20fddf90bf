/**
 * No telemetry and no litter from the extension host: onnxruntime-node writes a telemetry database
 * under ~/.cache/Microsoft/DeveloperTools/.onnxruntime and a mat-debug-<pid>.log in the temporary
 * folder unless ORT_DISABLE_TELEMETRY=1 is set before its first session. code-server runs with a
 * HOME and TMPDIR of its own (test/e2e/run.ts); after analyses in the worker threads, neither file
 * is there.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe } from 'node:test';
import { e2eEnv } from '../lib/env';
import { Overview, writeUiFixtures, ui } from '../lib/quantLensUi';
import { workbenchSuite } from '../lib/suite';

writeUiFixtures(e2eEnv().workspace);

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  if (existsSync(dir)) walk(dir);
  return out;
}

describe('Telemetry', () => {
  const suite = workbenchSuite('telemetry');

  suite.scenario('analyses in the extension leave no onnxruntime telemetry in HOME or TMPDIR', async (wb, env) => {
    await wb.explorerContextAction(ui.file, 'Inspect Checkpoint');
    const overview = await Overview.of(wb, ui.fileName);
    await overview.click('analyze-all');
    await overview.waitForProgress(/Analysing: done/);
    assert.ok((await overview.analysedCount()) >= 1, 'onnxruntime ran: layers were analysed in the worker');
    const left = [...filesUnder(env.home).map((f) => `~/${f}`), ...filesUnder(env.temp).map((f) => `$TMPDIR/${f}`)];
    // VS Code itself keeps a device id in ~/.cache/Microsoft/DeveloperTools/deviceid (code-server's
    // own, whatever its telemetry setting); onnxruntime's files are in .onnxruntime beside it.
    const telemetry = left.filter((f) =>
      /\.onnxruntime\/|onnxruntime\.db|mat-debug-\d+\.log|^\$TMPDIR\/\.ses$/.test(f),
    );
    assert.deepEqual(telemetry, [], `onnxruntime telemetry written by the extension host: ${telemetry.join(', ')}`);
  });
});
