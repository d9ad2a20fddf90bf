/**
 * quant-lens: the command-line face of the engine, for batch runs and automation.
 * Exit codes: 0 ok, 2 bad input (the message names the file and the problem), 1 internal error.
 */
import { isQuantLensError, errorMessage } from '../engine/errors';
import { layersCommand, layersHelp } from './commands/layers';
import { calibrateCommand, calibrateHelp } from './commands/calibrate';
import { evalCommand, evalHelp } from './commands/eval';
import { inspectCommand, inspectHelp } from './commands/inspect';
import { exportCommand, exportHelp } from './commands/export';
import { allocateCommand, allocateHelp } from './commands/allocate';
import { reassembleCommand, reassembleHelp } from './commands/reassemble';
import { fitStepsCommand, fitStepsHelp } from './commands/fitSteps';
import { compareCommand, compareHelp } from './commands/compare';

type Command = (argv: string[], out: NodeJS.WritableStream) => Promise<number>;

const commands: Record<string, { run: Command; help: string }> = {
  layers: { run: layersCommand, help: layersHelp },
  calibrate: { run: calibrateCommand, help: calibrateHelp },
  eval: { run: evalCommand, help: evalHelp },
  inspect: { run: inspectCommand, help: inspectHelp },
  export: { run: (argv) => exportCommand(argv), help: exportHelp },
  allocate: { run: allocateCommand, help: allocateHelp },
  reassemble: { run: reassembleCommand, help: reassembleHelp },
  'fit-steps': { run: fitStepsCommand, help: fitStepsHelp },
  compare: { run: compareCommand, help: compareHelp },
};

function usage(): string {
  return [
    'Quant Lens — layer-by-layer quantization error analysis',
    '',
    ...Object.values(commands).map((c) => c.help),
  ].join('\n\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n');
    return name ? 0 : 2;
  }
  const cmd = commands[name];
  if (!cmd) {
    process.stderr.write(`quant-lens: unknown command "${name}"\n\n${usage()}\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(cmd.help + '\n');
    return 0;
  }
  try {
    return await cmd.run(rest, process.stdout);
  } catch (e) {
    if (isQuantLensError(e)) {
      process.stderr.write(`quant-lens: ${e.message}\n`);
      return e.code === 'cancelled' ? 130 : 2;
    }
    process.stderr.write(
      `quant-lens: internal error: ${errorMessage(e)}\n${e instanceof Error ? (e.stack ?? '') : ''}\n`,
    );
    return 1;
  }
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
