/**
 * Centrifugo for the benchmark, built from the Go module proxy into the cache (never the checkout):
 *
 *   GOBIN=$RTGW_CACHE/bench/bin go install github.com/centrifugal/centrifugo/v6@CENTRIFUGO_VERSION
 *
 * When the proxy does not serve Centrifugo (here it answers 403 for every v5/v6 version), the stand-in is
 * test/bench/peers/centrifuge: the Centrifuge library that is Centrifugo's real-time core (same client
 * protocol, same in-memory broker) with Centrifugo's HMAC JWT, namespace and HTTP publish API, built into
 * $RTGW_CACHE/bench/bin/centrifuge-bench. The report names which one ran and why.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../../harness/gateway.ts';
import { freePort } from '../../harness/ports.ts';
import { start, waitFor, type Started } from '../../harness/process.ts';
import type { ServerProcess } from './targets.ts';

const run = promisify(execFile);
export const CENTRIFUGO_VERSION = process.env['CENTRIFUGO_VERSION'] ?? 'v6.3.0';
const BIN_DIR = join(process.env['RTGW_CACHE'] ?? join(homedir(), '.cache', 'realtime-gateway'), 'bench', 'bin');
const CENTRIFUGO = join(BIN_DIR, 'centrifugo');
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
  const env = { ...process.env, GOBIN: BIN_DIR, GOFLAGS: '-mod=mod' };
  if (!existsSync(CENTRIFUGO)) {
    try {
      log(`building github.com/centrifugal/centrifugo/v6@${CENTRIFUGO_VERSION} into ${BIN_DIR}`);
      await run('go', ['install', `github.com/centrifugal/centrifugo/v6@${CENTRIFUGO_VERSION}`], { env, timeout: 15 * 60_000, maxBuffer: 16 << 20 });
    } catch (error) {
      const stderr = String((error as { stderr?: string }).stderr ?? error).trim().split('\n').slice(-2).join(' ');
      note = `Centrifugo ${CENTRIFUGO_VERSION} could not be built: go install said "${stderr}"`;
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
    // Centrifugo v6's configuration layout: HMAC connection JWT, one namespace clients may subscribe to,
    // the HTTP API with a key.
    const dir = mkdtempSync(join(tmpdir(), 'rtgw-centrifugo-'));
    const config = join(dir, 'config.json');
    writeFileSync(config, JSON.stringify({
      client: { token: { hmac_secret_key: secret }, allowed_origins: ['*'] },
      http_api: { key: apiKey },
      http_server: { address: '127.0.0.1', port: String(port) },
      channel: { namespaces: [{ name: 'bench', allow_subscribe_for_client: true }] },
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
