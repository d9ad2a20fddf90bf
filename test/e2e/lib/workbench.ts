/**
 * What a person does in the VS Code workbench, as Playwright steps that wait on what the screen
 * shows (never on fixed sleeps). Selectors follow VS Code's own DOM (see
 * shared/docs/offline-vscode.md); keep them here so a workbench update is fixed in one place.
 */
import { join } from 'node:path';
import type { Frame, Locator, Page } from 'playwright-core';

export const TIMEOUT = { workbench: 90_000, ui: 15_000, webview: 45_000 } as const;

interface ExplorerRow {
  index: number;
  level: number;
  label: string;
  expanded: string | null;
}

/** The row of a path in one look at the explorer's rows (sorted by index), or null. */
function findPath(rows: ExplorerRow[], parts: string[]): ExplorerRow | null {
  let parent = -1;
  let found: ExplorerRow | null = null;
  for (const [i, name] of parts.entries()) {
    found = null;
    for (const r of rows) {
      if (r.index <= parent) continue;
      if (r.level < i + 1) break;
      if (r.level === i + 1 && r.label === name) {
        found = r;
        break;
      }
    }
    if (!found) return null;
    parent = found.index;
  }
  return found;
}

export class Workbench {
  /** Where screenshot() writes, set per scenario by the suite (see suite.ts). */
  shots: { dir: string; prefix: string } | undefined;

  constructor(
    readonly page: Page,
    /** code-server's URL. */
    private readonly url: string,
    /** The folder to open, on the code-server machine. */
    private readonly folder: string,
  ) {}

  /** Saves a screenshot of the whole workbench now, named after the scenario and `label`; returns its path. */
  async screenshot(label: string): Promise<string> {
    if (!this.shots) throw new Error('screenshot() is for scenario bodies (the suite sets where it writes)');
    const path = join(this.shots.dir, `${this.shots.prefix}-${label.replace(/[^a-zA-Z0-9]+/g, '-')}.png`);
    await this.page.screenshot({ path });
    return path;
  }

  /** Loads the workbench on the folder and waits until the explorer lists it. */
  async open(): Promise<void> {
    await this.page.goto(`${this.url}/?folder=${encodeURIComponent(this.folder)}`);
    await this.page.locator('.monaco-workbench').waitFor({ timeout: TIMEOUT.workbench });
    await this.explorerRows().first().waitFor({ timeout: TIMEOUT.workbench });
  }

  private explorerRows(): Locator {
    return this.page.locator('.explorer-folders-view .monaco-list-row');
  }

  /**
   * The explorer row of a workspace-relative path, expanding its parent folders on the way. Rows
   * are matched within their parent's subtree (two folders may hold files of the same name), and
   * the path is looked up from the top in each look at the list: rows shift when the explorer
   * refreshes (a .vscode folder appearing, say).
   */
  async revealInExplorer(relativePath: string): Promise<Locator> {
    const parts = relativePath.split('/');
    for (let i = 0; i < parts.length - 1; i++) {
      const folder = parts.slice(0, i + 1);
      const row = await this.explorerPathRow(folder);
      const deadline = Date.now() + TIMEOUT.ui;
      for (let r = row; r.expanded === 'false'; r = await this.explorerPathRow(folder)) {
        if (Date.now() > deadline) throw new Error(`the explorer does not expand ${folder.join('/')}`);
        // A row that moved before the click landed (see clickExplorerRow) is looked up again.
        const clicked = await this.explorerRowAt(r)
          .click({ timeout: 3000 })
          .then(() => true)
          .catch(() => false);
        if (clicked) await this.explorerPathRow(folder, (x) => x.expanded === 'true', 3000).catch(() => undefined);
      }
    }
    return this.explorerRowAt(await this.explorerPathRow(parts));
  }

  private explorerRowAt(row: ExplorerRow): Locator {
    return this.explorerRows().and(this.page.locator(`[data-index="${row.index}"][aria-label="${row.label}"]`));
  }

  /** Waits until the explorer lists the row of `parts` (satisfying `want`) and returns it. */
  private async explorerPathRow(
    parts: string[],
    want: (r: ExplorerRow) => boolean = () => true,
    timeout: number = TIMEOUT.ui,
  ): Promise<ExplorerRow> {
    const deadline = Date.now() + timeout;
    for (;;) {
      const rows = await this.explorerRows().evaluateAll((els) =>
        els.map((e) => ({
          index: Number(e.getAttribute('data-index')),
          level: Number(e.getAttribute('aria-level')),
          label: e.getAttribute('aria-label') ?? '',
          expanded: e.getAttribute('aria-expanded'),
        })),
      );
      rows.sort((a, b) => a.index - b.index);
      const row = findPath(rows, parts);
      if (row && want(row)) return row;
      if (Date.now() > deadline) {
        const listed = rows.map((r) => `${r.index}:${r.level}:${r.label}`).join(' | ');
        throw new Error(`the explorer does not list ${parts.join('/')} as expected (rows: ${listed})`);
      }
      await this.page.waitForTimeout(200);
    }
  }

  /**
   * Clicks the explorer row of a workspace-relative path. A row found by its index can move before
   * the click lands (the explorer refreshes when a .vscode folder or an output appears, and the
   * click then waits for a row that is no longer there), so a click that does not land soon is
   * retried on the row looked up afresh.
   */
  async clickExplorerRow(
    relativePath: string,
    options: { button?: 'left' | 'right'; clickCount?: number } = {},
  ): Promise<void> {
    const deadline = Date.now() + TIMEOUT.ui;
    for (;;) {
      const row = await this.revealInExplorer(relativePath);
      try {
        await row.click({ ...options, timeout: 3000 });
        return;
      } catch (e) {
        if (Date.now() > deadline) throw e;
      }
    }
  }

  /** Right-clicks an explorer item and returns the labels of the context menu that opened. */
  async explorerContextMenu(relativePath: string): Promise<string[]> {
    await this.clickExplorerRow(relativePath, { button: 'right' });
    const labels = this.page.locator('.context-view .action-label');
    await labels.first().waitFor({ timeout: TIMEOUT.ui });
    return (await labels.allInnerTexts()).map((l) => l.trim()).filter(Boolean);
  }

  /**
   * Right-clicks an explorer item and picks an entry of its context menu. Right after the
   * workbench loads, the menu can open before the extension host has registered the extension's
   * entries, so a menu without the entry is closed and opened again until the timeout.
   */
  async explorerContextAction(relativePath: string, entry: string, timeout: number = TIMEOUT.ui): Promise<void> {
    const deadline = Date.now() + timeout;
    for (;;) {
      const labels = await this.explorerContextMenu(relativePath);
      if (labels.includes(entry)) break;
      await this.dismiss();
      if (Date.now() > deadline) {
        throw new Error(`context menu of ${relativePath} has no "${entry}"; it has: ${labels.join(' | ')}`);
      }
      await this.page.waitForTimeout(500);
    }
    await this.clickContextMenuEntry(entry);
  }

  /** Clicks an entry of the context menu that is open. */
  async clickContextMenuEntry(entry: string): Promise<void> {
    const item = this.page.locator('.context-view .action-label', { hasText: entry }).first();
    await item.waitFor({ timeout: TIMEOUT.ui });
    await item.click();
    // A click that lands while the menu is still settling is sometimes lost and the menu stays
    // open: click the entry again (a menu that took the click closes at once).
    for (let i = 0; i < 3; i++) {
      await this.page.waitForTimeout(700);
      if (!(await item.isVisible().catch(() => false))) return;
      await item.click().catch(() => undefined);
    }
  }

  /**
   * The quick input that is open now (command palette, quick pick, file dialog). VS Code reuses
   * one widget for all of them; while one closes it is marked inert, and it must not be mistaken
   * for the next one.
   */
  quickInput(): Locator {
    return this.page.locator('.quick-input-widget:not(.quick-input-widget-closing):not([inert])');
  }

  /** Runs a command from the command palette by its full title ("Quant Lens: Inspect Checkpoint"). */
  /** The workbench element with keyboard focus, described (an IFRAME is a webview). */
  async focusedElement(): Promise<string> {
    // A string: this project's e2e code is typed without the DOM library.
    return this.page.evaluate<string>(`(() => {
      const e = document.activeElement;
      if (!e) return 'none';
      const cls = (x) => (typeof x.className === 'string' ? x.className.split(' ').slice(0, 3).join('.') : '');
      const part = e.closest('.part, .quick-input-widget, .notifications-toasts, .monaco-dialog-box');
      return e.tagName.toLowerCase() + '.' + cls(e) + (part && part !== e ? ' in ' + cls(part) : '');
    })()`);
  }

  async runCommand(title: string): Promise<void> {
    // A key press right after load can be lost unless the workbench has focus. The side bar's
    // title is a harmless place to click (the editor area may be covered by a webview's iframe).
    await this.page.locator('.part.sidebar .composite.title').click();
    await this.page.keyboard.press('Control+Shift+P');
    const input = this.quickInput().locator('input');
    await input.waitFor({ timeout: TIMEOUT.ui });
    // fill() sets the whole value at once; typed keys can race the palette's own '>' prefix.
    await input.fill(`>${title}`);
    const row = this.quickInput().locator('.monaco-list-row', { hasText: title }).first();
    try {
      await row.waitFor({ timeout: TIMEOUT.ui });
    } catch (e) {
      const rows = await this.quickInput().locator('.monaco-list-row').allInnerTexts();
      throw new Error(`command palette has no "${title}" (rows: ${rows.join(' | ') || 'none'})`, { cause: e });
    }
    await row.click();
  }

  /**
   * Answers an open-file dialog. In the browser workbench showOpenDialog is a quick input with
   * the path in its text box (the "simple file dialog").
   */
  async answerFileDialog(expectedTitle: string, absolutePath: string): Promise<void> {
    const dialog = this.quickInput();
    await dialog.locator('.quick-input-title', { hasText: expectedTitle }).waitFor({ timeout: TIMEOUT.ui });
    // The dialog fills in its start folder asynchronously; typing before that is overwritten.
    await dialog.locator('.monaco-list-row').first().waitFor({ timeout: TIMEOUT.ui });
    const input = dialog.locator('input');
    await input.fill(absolutePath);
    // It then lists the folder of the typed path; Enter before that accepts a stale value.
    const fileName = absolutePath.split('/').pop()!;
    await dialog.locator('.monaco-list-row', { hasText: fileName }).first().waitFor({ timeout: TIMEOUT.ui });
    if ((await input.inputValue()) !== absolutePath) await input.fill(absolutePath);
    // Wait for this dialog to go, not for the widget to hide: a command may open another quick
    // input right after it. An Enter that lands while the dialog still lists a folder (the start
    // folder can hold a file of the same name) is taken as navigation: press it again.
    const title = this.quickInput().locator('.quick-input-title', { hasText: expectedTitle });
    for (let attempt = 1; ; attempt++) {
      await input.press('Enter');
      try {
        await title.waitFor({ state: 'hidden', timeout: attempt < 3 ? 3000 : TIMEOUT.ui });
        return;
      } catch (e) {
        if (attempt >= 3) throw e;
      }
      if ((await input.inputValue()) !== absolutePath) await input.fill(absolutePath);
    }
  }

  /** Closes menus and quick inputs that a scenario may have left open. */
  async dismiss(): Promise<void> {
    for (let i = 0; i < 2; i++) await this.page.keyboard.press('Escape');
  }

  /** Closes every editor (webview panels included), so the next scenario starts from an empty editor area. */
  async closeAllEditors(): Promise<void> {
    await this.dismiss();
    await this.runCommand('View: Close All Editors');
    await this.page.locator('.editor-group-container .tab').first().waitFor({ state: 'detached', timeout: TIMEOUT.ui });
  }

  /** Titles of the open editor tabs. */
  async tabTitles(): Promise<string[]> {
    return (await this.page.locator('.tabs-container .tab .label-name').allInnerTexts()).map((t) => t.trim());
  }

  /**
   * The webview frame that contains `selector` (and `hasText`, when given). Webview content lives
   * in nested iframes; this polls the page's frames until one matches, and on timeout says which
   * webview frames there were and what they showed.
   */
  async webviewFrame(selector: string, opts: { hasText?: string; timeout?: number } = {}): Promise<Frame> {
    const deadline = Date.now() + (opts.timeout ?? TIMEOUT.webview);
    for (;;) {
      for (const frame of this.webviewFrames()) {
        const match = frame.locator(selector, opts.hasText ? { hasText: opts.hasText } : {});
        if ((await match.count().catch(() => 0)) > 0) return frame;
      }
      if (Date.now() > deadline) break;
      await this.page.waitForTimeout(200);
    }
    const seen = await Promise.all(
      this.webviewFrames().map(async (f) => {
        const text = await f
          .locator('body')
          .innerText({ timeout: 1000 })
          .catch(() => '');
        return `  ${f.url().slice(0, 80)}…: ${JSON.stringify(text.slice(0, 200))}`;
      }),
    );
    const what = opts.hasText ? `${selector} with text "${opts.hasText}"` : selector;
    throw new Error(`no webview showed ${what}; webview frames:\n${seen.join('\n') || '  none'}`);
  }

  /** Frames inside webviews: everything below the workbench's own document. */
  private webviewFrames(): Frame[] {
    const main = this.page.mainFrame();
    return this.page.frames().filter((f) => f !== main && f.parentFrame() !== main);
  }
}
