// @vscode/test-cli configuration for the extension-host suite (test/exthost). Run it through
// `npm run test:exthost`, which compiles the tests to out/exthost first and decides where they
// can run (see test/exthost/run.ts). VSCODE_EXECUTABLE points at an installed VS Code; without
// it @vscode/test-electron downloads the latest stable build into .vscode-test/.
import { defineConfig } from '@vscode/test-cli';

const executable = process.env.VSCODE_EXECUTABLE;

export default defineConfig({
  label: 'exthost',
  files: 'out/exthost/suite/**/*.test.js',
  workspaceFolder: 'out/exthost/workspace',
  mocha: { ui: 'tdd', timeout: 60_000, color: false },
  launchArgs: ['--disable-extensions', '--disable-workspace-trust', '--skip-welcome', '--skip-release-notes'],
  ...(executable ? { useInstallation: { fromPath: executable } } : { version: 'stable' }),
});
