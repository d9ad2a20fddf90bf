/**
 * Preloaded into code-server's extension host: a remote extension host's stdout goes nowhere
 * visible, so mocha's reporter lines are appended to the file test/exthost/run.ts prints.
 */
import { appendFileSync } from 'node:fs';
import { format } from 'node:util';
import Mocha from 'mocha';

const file = process.env.QUANT_LENS_EXTHOST_LOG;
if (file) {
  Mocha.reporters.Base.consoleLog = (...args: unknown[]) => appendFileSync(file, format(...args) + '\n');
}
