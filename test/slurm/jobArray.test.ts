/**
 * The README's Slurm submission on a real single-node Slurm cluster: munged, slurmctld and slurmd
 * started here with all their state in a temporary folder (own key, socket, ports, spool and
 * logs), a 4-task array over a test checkpoint, and the merged results compared with one process.
 * The daemons run in the foreground as this process's children and are stopped by those pids,
 * whatever happens (also on a timeout, SIGINT or SIGTERM).
 *
 * Needs root and Debian's slurm-wlm and munge (installed with apt-get when missing). Without root
 * or apt it skips, saying so loudly; CI runs as root and installs the packages in .ci/run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { hostname, tmpdir, totalmem, availableParallelism } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { cliScript } from '../helpers/workerBundle';
import { llamaLayerShapes, writeLlamaCheckpoint, writeLlamaStats } from '../helpers/llamaFixture';

const root = join(import.meta.dirname, '../..');
/** Everything (install excepted) must finish well within this; then the test fails and tears down. */
const DEADLINE_MS = 240_000;
const BINARIES = ['/usr/sbin/munged', '/usr/sbin/slurmctld', '/usr/sbin/slurmd', '/usr/bin/sbatch', '/usr/bin/squeue'];

function loudSkip(why: string): string {
  const bar = '!'.repeat(78);
  process.stderr.write(
    `\n${bar}\n!! SLURM TEST SKIPPED: ${why}\n!! CI runs it as root with slurm-wlm and munge installed (.ci/run).\n${bar}\n\n`,
  );
  return `SLURM TEST SKIPPED: ${why}`;
}

/** Installs slurm-wlm and munge when missing; returns why it cannot run, or null. */
function ensureSlurm(): string | null {
  if (BINARIES.every((b) => existsSync(b))) return null;
  if (process.platform !== 'linux' || process.getuid?.() !== 0)
    return 'not root, and slurm-wlm/munge are not installed';
  if (spawnSync('apt-get', ['--version']).status !== 0) return 'no apt-get to install slurm-wlm and munge';
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () =>
    spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'slurm-wlm', 'munge'], {
      env,
      stdio: 'inherit',
      timeout: 600_000,
    });
  if (install().status !== 0) {
    spawnSync('apt-get', ['update', '-qq'], { env, stdio: 'inherit', timeout: 300_000 });
    if (install().status !== 0) throw new Error('apt-get install slurm-wlm munge failed');
  }
  return BINARIES.every((b) => existsSync(b))
    ? null
    : `apt-get installed slurm-wlm but ${BINARIES.join(', ')} are not all there`;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Daemons this test started, by pid; stopped in reverse order on every way out. */
class Daemons {
  private readonly procs: { name: string; child: ChildProcess }[] = [];
  private readonly onSignal = (sig: NodeJS.Signals) => {
    this.killNow();
    if (!process.env.QUANT_LENS_KEEP_SLURM) rmSync(this.scratch, { recursive: true, force: true });
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  private readonly onExit = () => this.killNow();

  constructor(
    /** The run's temporary folder, removed when a signal ends the test. */
    private readonly scratch: string,
    private readonly logDir: string,
    /** This run's slurm.conf: a path no other process on the machine has in its environment. */
    private readonly conf: string,
  ) {
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
    process.on('exit', this.onExit);
  }

  start(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
    const out = join(this.logDir, `${name}.out`);
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr.on('data', (d: Buffer) => (log += d.toString()));
    child.on('exit', () => writeFileSync(out, log));
    this.procs.push({ name, child });
    return child;
  }

  /**
   * Job steps and their tasks: slurmd starts them as slurmstepd processes of their own, which
   * outlive slurmd when the test is interrupted mid-job. They all carry this run's SLURM_CONF.
   */
  private strays(jobsOnly = false): number[] {
    if (!existsSync('/proc')) return [];
    const marker = `SLURM_CONF=${this.conf}\0`;
    const daemons = new Set(this.procs.map((p) => p.child.pid));
    const out: number[] = [];
    for (const name of readdirSync('/proc')) {
      const pid = Number(name);
      if (!Number.isInteger(pid) || pid === process.pid || daemons.has(pid)) continue;
      try {
        if (!readFileSync(`/proc/${pid}/environ`, 'latin1').includes(marker)) continue;
        // A daemon's own helper (slurmctld's slurmscriptd) goes with the daemon.
        const ppid = Number(/\) \S+ (\d+)/.exec(readFileSync(`/proc/${pid}/stat`, 'latin1'))?.[1]);
        if (jobsOnly && daemons.has(ppid)) continue;
        out.push(pid);
      } catch {
        // gone, or not readable: not one of ours
      }
    }
    return out;
  }

  private killStrays(): number[] {
    const pids = this.strays();
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    return pids;
  }

  /** Synchronous: usable from 'exit' handlers. */
  private killNow(): void {
    this.killStrays();
    for (const { child } of [...this.procs].reverse()) {
      if (child.exitCode === null && child.signalCode === null && child.pid) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  }

  /** SIGTERM each (slurmd, slurmctld, munged), waiting up to 10 s before SIGKILL. */
  async stop(): Promise<void> {
    // A finished job's slurmstepd takes a moment to exit, and needs slurmd for it.
    for (let i = 0; i < 50 && this.strays(true).length; i++) await sleep(200);
    for (const { name, child } of [...this.procs].reverse()) {
      if (child.exitCode !== null || child.signalCode !== null || !child.pid) continue;
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      process.kill(child.pid, 'SIGTERM');
      const t = setTimeout(() => {
        process.stderr.write(`[slurm test] ${name} (pid ${child.pid}) ignored SIGTERM for 10 s: SIGKILL\n`);
        if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
      }, 10_000);
      await gone;
      clearTimeout(t);
    }
    const strays = this.killStrays();
    if (strays.length) process.stderr.write(`[slurm test] killed job processes left behind: ${strays.join(', ')}\n`);
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
    process.off('exit', this.onExit);
  }

  alive(): string[] {
    return this.procs.filter((p) => p.child.exitCode === null && p.child.signalCode === null).map((p) => p.name);
  }
}

/** The script between the README's slurm-script markers. */
function readmeScript(): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const m = /<!-- slurm-script -->\s*```bash\n([\s\S]*?)```\s*<!-- \/slurm-script -->/.exec(readme);
  assert.ok(m, 'README.md has the Slurm script between <!-- slurm-script --> markers');
  return m[1]!;
}

function jsonLines(text: string): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>();
  for (const line of text.trim().split('\n')) {
    const o = JSON.parse(line) as Record<string, unknown>;
    // This machine's time, different in every run.
    delete o.timeMs;
    delete o.stageMs;
    out.set(o.name as string, o);
  }
  return out;
}

test(
  'the README Slurm job array (4 tasks) on a real cluster gives the results of one process',
  { timeout: DEADLINE_MS + 900_000 },
  async (t) => {
    const why = ensureSlurm();
    if (why) {
      t.skip(loudSkip(why));
      return;
    }
    if (process.getuid?.() !== 0) {
      t.skip(loudSkip('slurmd must run as root to start jobs'));
      return;
    }
    const deadline = Date.now() + DEADLINE_MS;
    const left = () => Math.max(1, deadline - Date.now());
    const dir = mkdtempSync(join(tmpdir(), 'ql-slurm-'));
    chmodSync(dir, 0o755);
    const state = join(dir, 'slurm');
    for (const d of ['ctld', 'spool', 'log']) mkdirSync(join(state, d), { recursive: true });
    const conf = join(state, 'slurm.conf');
    const daemons = new Daemons(dir, join(state, 'log'), conf);
    const env: NodeJS.ProcessEnv = { ...process.env, SLURM_CONF: conf };
    for (const k of Object.keys(env)) if (k.startsWith('SLURM_') && k !== 'SLURM_CONF') delete env[k];
    const jobs: string[] = [];
    const slurm = (cmd: string, args: string[], cwd = dir) => {
      const r = spawnSync(cmd, args, { env, cwd, encoding: 'utf8', timeout: Math.min(60_000, left()) });
      return { code: r.status, out: r.stdout ?? '', err: r.stderr ?? '' };
    };
    try {
      // munge: its own key and socket.
      const key = join(state, 'munge.key');
      writeFileSync(key, randomBytes(1024), { mode: 0o400 });
      const socket = join(state, 'munge.sock');
      daemons.start(
        'munged',
        '/usr/sbin/munged',
        [
          '-F',
          '--force',
          `--key-file=${key}`,
          `--socket=${socket}`,
          `--pid-file=${join(state, 'munged.pid')}`,
          `--log-file=${join(state, 'log', 'munged.log')}`,
          `--seed-file=${join(state, 'munged.seed')}`,
        ],
        env,
      );
      for (let i = 0; !existsSync(socket); i++) {
        assert.ok(i < 100, `munged did not create its socket (alive: ${daemons.alive().join(', ')})`);
        await sleep(100);
      }
      const host = hostname().split('.')[0]!;
      const cpus = availableParallelism();
      const memMb = Math.max(1024, Math.floor(totalmem() / 2 ** 20) - 2048);
      const [ctldPort, dPort] = [await freePort(), await freePort()];
      writeFileSync(
        env.SLURM_CONF!,
        [
          `ClusterName=qltest${process.pid}`,
          `SlurmctldHost=${host}(127.0.0.1)`,
          `SlurmctldPort=${ctldPort}`,
          `SlurmdPort=${dPort}`,
          'AuthType=auth/munge',
          `AuthInfo=socket=${socket}`,
          'CredType=cred/munge',
          'SlurmUser=root',
          'SlurmdUser=root',
          // No cgroups: a container or VM may not allow them.
          'ProctrackType=proctrack/linuxproc',
          'TaskPlugin=task/none',
          'SchedulerType=sched/backfill',
          'SelectType=select/cons_tres',
          'SelectTypeParameters=CR_Core',
          'MpiDefault=none',
          'ReturnToService=2',
          `StateSaveLocation=${join(state, 'ctld')}`,
          `SlurmdSpoolDir=${join(state, 'spool')}`,
          `SlurmctldPidFile=${join(state, 'slurmctld.pid')}`,
          `SlurmdPidFile=${join(state, 'slurmd.pid')}`,
          `SlurmctldLogFile=${join(state, 'log', 'slurmctld.log')}`,
          `SlurmdLogFile=${join(state, 'log', 'slurmd.log')}`,
          `NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${memMb} State=UNKNOWN`,
          `PartitionName=qltest Nodes=${host} Default=YES MaxTime=INFINITE State=UP`,
        ].join('\n') + '\n',
      );
      daemons.start('slurmctld', '/usr/sbin/slurmctld', ['-D', '-f', env.SLURM_CONF!], env);
      daemons.start('slurmd', '/usr/sbin/slurmd', ['-D', '-f', env.SLURM_CONF!, '-N', host], env);
      for (let i = 0; ; i++) {
        const s = slurm('sinfo', ['-h', '-o', '%T']);
        if (/idle/.test(s.out)) break;
        assert.ok(
          i < 60 && daemons.alive().length === 3,
          `the node did not come up: ${s.out}${s.err} (alive: ${daemons.alive().join(', ')})`,
        );
        await sleep(1000);
      }

      // The checkpoint, and what one process makes of it.
      const ckpt = writeLlamaCheckpoint(dir, { blocks: 3 });
      const calib = await writeLlamaStats(dir, { blocks: 3 });
      const args = `--calib ${calib} --method l2qer --format mxint4 --rank 8 --max-rank 16`;
      const cli = cliScript();
      const single = spawnSync(process.execPath, [cli, 'inspect', ckpt, ...args.split(' '), '--json'], {
        encoding: 'utf8',
        timeout: left(),
      });
      assert.equal(single.status, 0, single.stderr);

      // The README's script, unchanged, with its variables from the environment.
      const script = join(dir, 'submit.sh');
      writeFileSync(script, readmeScript());
      const store = join(dir, 'store');
      const results = join(dir, 'results.jsonl');
      const submit = spawnSync('bash', [script], {
        cwd: dir,
        encoding: 'utf8',
        timeout: 60_000,
        env: {
          ...env,
          PARTITION: 'qltest',
          ACCOUNT: '',
          TASKS: '4',
          CPUS: '1',
          MEM: '1G',
          TIME: '00:10:00',
          QUANT_LENS: `${process.execPath} ${cli}`,
          CHECKPOINT: ckpt,
          STORE: store,
          RESULTS: results,
          ARGS: args,
        },
      });
      assert.equal(submit.status, 0, `${submit.stdout}${submit.stderr}`);
      const m = /array job (\d+), merge job (\d+)/.exec(submit.stdout);
      assert.ok(m, submit.stdout);
      jobs.push(m[1]!, m[2]!);
      for (let i = 0; ; i++) {
        const q = slurm('squeue', ['-h', '-j', jobs.join(','), '-o', '%i %T %r']);
        if (q.code === 0 && q.out.trim() === '') break;
        assert.ok(Date.now() < deadline, `the jobs did not finish in time:\n${q.out}${q.err}`);
        await sleep(1000);
      }

      // Every task took its own shard, together every layer once.
      const logs = readdirSync(dir).filter((f) => /^quant-lens-\d+_\d+\.log$/.test(f));
      assert.equal(logs.length, 4, `task logs: ${readdirSync(dir).join(', ')}`);
      const layers = llamaLayerShapes({ blocks: 3 }).length;
      let total = 0;
      const shards = new Set<string>();
      for (const f of logs) {
        const text = readFileSync(join(dir, f), 'utf8');
        const s = /shard (\d)\/4: (\d+) of (\d+) layers/.exec(text);
        assert.ok(s, `${f}: ${text}`);
        shards.add(s[1]!);
        total += Number(s[2]);
        assert.equal(Number(s[3]), layers);
        assert.match(text, new RegExp(`0 layers from the store, ${s[2]} computed`), f);
      }
      assert.deepEqual([...shards].sort(), ['0', '1', '2', '3']);
      assert.equal(total, layers);

      // The merge job read everything from the store, and it is what one process gives.
      const merge = readdirSync(dir).find((f) => /^quant-lens-merge-\d+\.log$/.test(f));
      assert.ok(merge);
      assert.match(readFileSync(join(dir, merge), 'utf8'), new RegExp(`${layers} layers from the store, 0 computed`));
      const merged = jsonLines(readFileSync(results, 'utf8'));
      const one = jsonLines(single.stdout);
      assert.equal(merged.size, layers);
      assert.deepEqual([...merged.keys()], [...one.keys()]);
      assert.deepEqual(merged, one);
      process.stderr.write(`[slurm test] 4-task array + merge: ${layers} layers equal to one process\n`);
    } finally {
      if (jobs.length) slurm('scancel', jobs);
      // Jobs gone before slurmd stops, so that no job step outlives the cluster.
      for (let i = 0; jobs.length && i < 30; i++) {
        if (slurm('squeue', ['-h', '-j', jobs.join(',')]).out.trim() === '') break;
        await sleep(500);
      }
      await daemons.stop();
      assert.deepEqual(daemons.alive(), []);
      if (process.env.QUANT_LENS_KEEP_SLURM) process.stderr.write(`[slurm test] state kept in ${dir}\n`);
      else rmSync(dir, { recursive: true, force: true });
    }
  },
);
