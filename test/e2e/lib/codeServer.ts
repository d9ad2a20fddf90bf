/**
 * One code-server for a suite run: a throwaway user-data and extensions folder, the extension
 * under test installed from its VSIX with `--install-extension` (as a user would install it),
 * settings that keep the workbench quiet offline, and a port picked by the OS.
 */
import type { ChildProcess } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Tools } from './environment';
import { exited, spawnGroup, stopGroup } from './processGroup';

/** Settings that keep the offline workbench free of welcome pages, chat and network calls. */
const quietSettings = {
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
  'chat.disableAIFeatures': true,
  'telemetry.telemetryLevel': 'off',
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'update.mode': 'none',
  'git.enabled': false,
  'git.autoRepositoryDetection': false,
  'github.gitAuthentication': false,
  'security.workspace.trust.enabled': false,
  // Every suite starts from a fresh extension host; a result store would carry analyses from one
  // scenario into the next. The result-store scenario turns it on (the default) for itself.
  'quantLens.resultStore': 'off',
};

export interface CodeServerOptions {
  tools: Tools;
  /** Empty folder for user data, extensions, config and logs. */
  stateDir: string;
  /** Extra environment for code-server and so for its extension hosts. */
  env?: Record<string, string>;
}

export class CodeServer {
  readonly userDataDir: string;
  readonly extensionsDir: string;
  private readonly configFile: string;
  private child: ChildProcess | undefined;
  private output = '';
  url = '';

  constructor(private readonly options: CodeServerOptions) {
    this.userDataDir = join(options.stateDir, 'user-data');
    this.extensionsDir = join(options.stateDir, 'extensions');
    this.configFile = join(options.stateDir, 'config.yaml');
    mkdirSync(join(this.userDataDir, 'User'), { recursive: true });
    mkdirSync(this.extensionsDir, { recursive: true });
    writeFileSync(join(this.userDataDir, 'User/settings.json'), JSON.stringify(quietSettings, null, 2));
    writeFileSync(this.configFile, 'auth: none\n');
  }

  private baseArgs(): string[] {
    return [
      this.options.tools.codeServerEntry,
      '--config',
      this.configFile,
      '--user-data-dir',
      this.userDataDir,
      '--extensions-dir',
      this.extensionsDir,
    ];
  }

  /** Installs a VSIX and returns the folder it was unpacked to. */
  installExtension(vsix: string): string {
    const before = new Set(readdirSync(this.extensionsDir));
    const r = spawnSync(this.options.tools.node, [...this.baseArgs(), '--install-extension', vsix], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    if (r.status !== 0) {
      throw new Error(`code-server --install-extension ${vsix} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
    }
    const added = readdirSync(this.extensionsDir).filter((d) => !before.has(d) && !d.endsWith('.json'));
    if (added.length !== 1) throw new Error(`expected one new extension folder, found: ${added.join(', ') || 'none'}`);
    return join(this.extensionsDir, added[0]!);
  }

  async start(timeoutMs = 60_000): Promise<string> {
    const child = spawnGroup(
      this.options.tools.node,
      [
        ...this.baseArgs(),
        '--auth',
        'none',
        '--bind-addr',
        '127.0.0.1:0',
        '--disable-telemetry',
        '--disable-update-check',
        '--disable-workspace-trust',
        '--disable-getting-started-override',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...this.options.env } },
    );
    this.child = child;
    const listening = new Promise<string>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        this.output += chunk.toString();
        const m = /HTTP server listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(this.output);
        if (m) resolve(m[1]!);
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      void exited(child).then((code) =>
        reject(new Error(`code-server exited (${code}) before listening:\n${this.output}`)),
      );
      setTimeout(
        () => reject(new Error(`code-server did not listen within ${timeoutMs} ms:\n${this.output}`)),
        timeoutMs,
      ).unref();
    });
    this.url = await listening;
    return this.url;
  }

  /** Everything code-server printed so far (for failure reports). */
  get log(): string {
    return this.output;
  }

  async stop(): Promise<void> {
    if (this.child) await stopGroup(this.child);
    this.child = undefined;
  }
}
