/**
 * quant-lens: the command-line face of the engine, for batch runs and automation.
 * Exit codes: 0 ok, 2 bad input (the message names the file and the problem), 1 internal error,
 * 128 + n after signal n (130 for SIGINT, 143 for SIGTERM), with no temporary file left behind.
 */
import { isQuantLensError, errorMessage } from '../engine/errors';
import { disableOrtTelemetry } from '../engine/ort';
import { removeTemporaryOutputs } from '../engine/writers/safeOutput';
import { relaunchWithHugePages } from './hugePages';
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

/**
 * A file-system error about a path the user gave (a file that cannot be read, a folder that
 * vanished): the user's problem, told as such, without a stack trace.
 */
function systemError(e: unknown): string | null {
  if (!(e instanceof Error)) return null;
  const err = e as NodeJS.ErrnoException;
  if (typeof err.code !== 'string' || typeof err.path !== 'string' || !err.syscall) return null;
  const reasons: Record<string, string> = {
    ENOENT: 'no such file or folder',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    EISDIR: 'is a folder',
    ENOTDIR: 'a part of the path is not a folder',
    EIO: 'input/output error',
    ELOOP: 'too many levels of symbolic links',
    ENAMETOOLONG: 'the name is too long',
  };
  return `${err.path}: ${reasons[err.code] ?? err.code}`;
}

/** `out` receives what a command prints as its result (tests pass their own stream); messages go to stderr. */
export async function main(argv: string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    out.write(usage() + '\n');
    return name ? 0 : 2;
  }
  const cmd = commands[name];
  if (!cmd) {
    process.stderr.write(
      `quant-lens: unknown command "${name}"; the commands are ${Object.keys(commands).join(', ')} (quant-lens --help)\n`,
    );
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    out.write(cmd.help + '\n');
    return 0;
  }
  try {
    return await cmd.run(rest, out);
  } catch (e) {
    if (isQuantLensError(e)) {
      process.stderr.write(`quant-lens: ${e.message}\n`);
      return e.code === 'cancelled' ? 130 : 2;
    }
    const system = systemError(e);
    if (system) {
      process.stderr.write(`quant-lens: ${system}\n`);
      return 2;
    }
    process.stderr.write(
      `quant-lens: internal error: ${errorMessage(e)}\n${e instanceof Error ? (e.stack ?? '') : ''}\n`,
    );
    return 1;
  }
}

const SIGNALS = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;

/**
 * An interrupted command removes its temporary files (outputs being written, edited models for
 * onnxruntime) and exits at once with 128 + the signal's number, as a shell expects.
 */
function exitOnSignals(): void {
  process.on('exit', () => removeTemporaryOutputs());
  for (const [name, n] of Object.entries(SIGNALS)) {
    process.on(name, () => {
      removeTemporaryOutputs();
      process.exit(128 + n);
    });
  }
}

async function start(argv: string[]): Promise<number> {
  const relaunched = await relaunchWithHugePages(__filename, argv);
  if (relaunched !== null) return relaunched;
  disableOrtTelemetry();
  exitOnSignals();
  return main(argv);
}

if (require.main === module) {
  void start(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
