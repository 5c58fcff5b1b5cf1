/**
 * Centrifugo for the benchmark, built from the Go module proxy into the cache (never the checkout). The proxy
 * here serves one Centrifugo version, v5.4.9 (it answers 403 for v6 and for the other v5 versions, and for the
 * version list that `go install module@version` reads), so the module is downloaded and built in place:
 *
 *   go mod download github.com/centrifugal/centrifugo/v5@v5.4.9   (from a scratch module)
 *   cd $GOMODCACHE/github.com/centrifugal/centrifugo/v5@v5.4.9 && go build -o $RTGW_CACHE/bench/bin/centrifugo-v5.4.9 .
 *
 * CENTRIFUGO_VERSION picks another (v5 or v6; each has its own configuration layout). When Centrifugo cannot be
 * built, the stand-in is test/bench/peers/centrifuge: the Centrifuge library that is Centrifugo's real-time core
 * (same client protocol, same in-memory broker) with Centrifugo's HMAC JWT, namespace and HTTP publish API, built
 * into $RTGW_CACHE/bench/bin/centrifuge-bench. The report names which one ran and why.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../../harness/gateway.ts';
import { freePort } from '../../harness/ports.ts';
import { start, waitFor, type Started } from '../../harness/process.ts';
import type { ServerProcess } from './targets.ts';

const run = promisify(execFile);
export const CENTRIFUGO_VERSION = process.env['CENTRIFUGO_VERSION'] ?? 'v5.4.9';
const MAJOR = /^v(\d+)\./.exec(CENTRIFUGO_VERSION)?.[1] ?? '5';
const MODULE = `github.com/centrifugal/centrifugo/v${MAJOR}`;
const BIN_DIR = join(process.env['RTGW_CACHE'] ?? join(homedir(), '.cache', 'realtime-gateway'), 'bench', 'bin');
const CENTRIFUGO = join(BIN_DIR, `centrifugo-${CENTRIFUGO_VERSION}`);
const STAND_IN = join(BIN_DIR, 'centrifuge-bench');

export interface CentrifugoBinary {
  readonly path: string;
  readonly kind: 'centrifugo' | 'centrifuge-library';
  readonly label: string;
}

let note: string | undefined;

export function centrifugoBinary(): CentrifugoBinary | undefined {
  if (existsSync(CENTRIFUGO)) return { path: CENTRIFUGO, kind: 'centrifugo', label: `Centrifugo ${CENTRIFUGO_VERSION}` };
  if (existsSync(STAND_IN)) return { path: STAND_IN, kind: 'centrifuge-library', label: 'Centrifuge v0.40.1 library (Centrifugo\'s core)' };
  return undefined;
}

/** Why Centrifugo itself is not what runs (undefined when it is). */
export function centrifugoNote(): string | undefined {
  return note;
}

/** Builds Centrifugo, or else the stand-in; cached. Never throws: an unbuildable peer is reported, not fatal. */
export async function buildCentrifugo(log: (line: string) => void): Promise<CentrifugoBinary | undefined> {
  mkdirSync(BIN_DIR, { recursive: true });
  const env = { ...process.env, GOFLAGS: '-mod=mod' };
  if (!existsSync(CENTRIFUGO)) {
    try {
      log(`building ${MODULE}@${CENTRIFUGO_VERSION} into ${CENTRIFUGO}`);
      // `go install module@version` also reads the module's version list (for a deprecation notice), which the
      // proxy refuses; downloading the one version and building it where it lies needs only that version.
      const scratch = mkdtempSync(join(tmpdir(), 'rtgw-centrifugo-build-'));
      writeFileSync(join(scratch, 'go.mod'), 'module centrifugobuild\n\ngo 1.23\n');
      const { stdout } = await run('go', ['mod', 'download', '-json', `${MODULE}@${CENTRIFUGO_VERSION}`], { cwd: scratch, env, timeout: 15 * 60_000, maxBuffer: 16 << 20 })
        .finally(() => rmSync(scratch, { recursive: true, force: true }));
      const dir = (JSON.parse(stdout) as { Dir?: string }).Dir;
      if (!dir) throw new Error(`go mod download gave no directory: ${stdout}`);
      const version = `-X ${MODULE}/internal/build.Version=${CENTRIFUGO_VERSION.slice(1)}`;
      await run('go', ['build', '-ldflags', version, '-o', CENTRIFUGO, '.'], { cwd: dir, env: { ...env, GOFLAGS: '' }, timeout: 15 * 60_000, maxBuffer: 16 << 20 });
    } catch (error) {
      const stderr = String((error as { stderr?: string }).stderr || error).trim().split('\n').slice(-2).join(' ');
      note = `Centrifugo ${CENTRIFUGO_VERSION} could not be built: ${stderr}`;
      log(note);
    }
  }
  if (existsSync(CENTRIFUGO)) return centrifugoBinary();
  if (!existsSync(STAND_IN)) {
    try {
      log(`building the stand-in (test/bench/peers/centrifuge) into ${STAND_IN}`);
      await run('go', ['build', '-o', STAND_IN, '.'], { cwd: join(REPO_ROOT, 'test/bench/peers/centrifuge'), env, timeout: 15 * 60_000, maxBuffer: 16 << 20 });
    } catch (error) {
      const stderr = String((error as { stderr?: string }).stderr ?? error).trim().split('\n').slice(-3).join(' ');
      note = `${note ?? ''}; the Centrifuge library stand-in did not build either: ${stderr}`;
      log(note);
      return undefined;
    }
  }
  note ??= 'Centrifugo is not in the cache';
  note += '; measured instead: the Centrifuge library (Centrifugo\'s real-time core, same client protocol) behind Centrifugo\'s HMAC JWT, namespace and HTTP publish API (test/bench/peers/centrifuge)';
  return centrifugoBinary();
}

export async function startCentrifugo(): Promise<{ child: Started; server: ServerProcess; secret: string; apiKey: string }> {
  const binary = centrifugoBinary();
  if (!binary) throw new Error('no Centrifugo binary: run buildCentrifugo() first');
  const port = await freePort();
  const secret = 'bench-centrifugo-hmac-secret-0123456789abcdef';
  const apiKey = 'bench-centrifugo-api-key';
  let child: Started;
  if (binary.kind === 'centrifugo') {
    // An HMAC connection JWT, one namespace clients may subscribe to, the HTTP API with a key, /health: in v5's
    // flat configuration layout or v6's nested one.
    const dir = mkdtempSync(join(tmpdir(), 'rtgw-centrifugo-'));
    const config = join(dir, 'config.json');
    const namespaces = [{ name: 'bench', allow_subscribe_for_client: true }];
    writeFileSync(config, JSON.stringify(MAJOR === '5'
      ? {
        token_hmac_secret_key: secret,
        allowed_origins: ['*'],
        api_key: apiKey,
        address: '127.0.0.1',
        port: String(port),
        health: true,
        namespaces,
        log_level: 'error',
      }
      : {
        client: { token: { hmac_secret_key: secret }, allowed_origins: ['*'] },
        http_api: { key: apiKey },
        http_server: { address: '127.0.0.1', port: String(port) },
        health: { enabled: true },
        channel: { namespaces },
        log: { level: 'error' },
      }));
    child = start(binary.path, ['--config', config], { env: { PATH: process.env['PATH'] ?? '' } });
  } else {
    child = start(binary.path, [], { env: { PATH: process.env['PATH'] ?? '', PORT: String(port), JWT_SECRET: secret, API_KEY: apiKey } });
  }
  const httpUrl = `http://127.0.0.1:${port}`;
  await waitFor(`${binary.label} on :${port}`, async () => {
    if (child.child.exitCode !== null) throw new Error(`${binary.path} exited with ${child.child.exitCode}:\n${child.output()}`);
    return (await fetch(`${httpUrl}/health`).catch(() => undefined))?.ok;
  }, 20_000);
  return { child, server: { pid: child.child.pid!, httpUrl, port }, secret, apiKey };
}
