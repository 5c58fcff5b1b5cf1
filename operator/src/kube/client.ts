/**
 * The operator's only door to the API server: plain HTTPS requests, with credentials and TLS taken
 * from @kubernetes/client-node's KubeConfig (kubeconfig file or in-cluster service account).
 *
 * Why not client-node's typed APIs: KubernetesObjectApi (and the generated clients) serialize built-in
 * kinds through their models and silently drop fields the models do not know, so a server-side apply
 * through them can lose fields; server-side apply needs content-type application/apply-patch+yaml,
 * and watches need an abort we control (see informer.ts). JSON in, JSON out, nothing dropped.
 */
import https from 'node:https';
import http from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';

/** Error codes: the HTTP status reason of a failed API call, or `Network` when there was no answer. */
export type KubeErrorCode = 'NotFound' | 'Conflict' | 'AlreadyExists' | 'Gone' | 'Invalid' | 'Forbidden' | 'Unauthorized' | 'TooManyRequests' | 'ServerError' | 'Network' | 'Other';

export class KubeApiError extends Error {
  readonly code: KubeErrorCode;
  readonly status: number;
  constructor(code: KubeErrorCode, status: number, message: string) {
    super(message);
    this.name = 'KubeApiError';
    this.code = code;
    this.status = status;
  }
}

function codeFor(status: number, reason: string | undefined): KubeErrorCode {
  if (status === 404) return 'NotFound';
  if (status === 409) return reason === 'AlreadyExists' ? 'AlreadyExists' : 'Conflict';
  if (status === 410) return 'Gone';
  if (status === 422) return 'Invalid';
  if (status === 403) return 'Forbidden';
  if (status === 401) return 'Unauthorized';
  if (status === 429) return 'TooManyRequests';
  if (status >= 500) return 'ServerError';
  return 'Other';
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Defaults to application/json; kubectl-style tables need application/json;as=Table;... */
  accept?: string;
}

export interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

export interface KubeClientLike {
  request<T>(method: string, path: string, opts?: RequestOptions): Promise<T>;
  watch<T>(path: string, query: Record<string, string | number | boolean | undefined>, onEvent: (e: WatchEvent<T>) => void, signal: AbortSignal): Promise<void>;
}

function withQuery(path: string, query: RequestOptions['query']): string {
  if (query === undefined) return path;
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) q.set(k, String(v));
  const s = q.toString();
  return s === '' ? path : `${path}?${s}`;
}

export class KubeClient implements KubeClientLike {
  readonly server: URL;
  private readonly base: https.RequestOptions;
  private readonly agent: http.Agent;
  private readonly kc: KubeConfig;

  private constructor(kc: KubeConfig, server: URL, base: https.RequestOptions) {
    this.kc = kc;
    this.server = server;
    this.base = base;
    const agentOpts = { keepAlive: true, maxSockets: 64, ca: base.ca, cert: base.cert, key: base.key, rejectUnauthorized: base.rejectUnauthorized, servername: base.servername };
    this.agent = server.protocol === 'https:' ? new https.Agent(agentOpts) : new http.Agent({ keepAlive: true, maxSockets: 64 });
  }

  /** From a kubeconfig path, or in-cluster when `kubeconfig` is undefined and the pod has a service account. */
  static async create(kubeconfig: string | undefined): Promise<KubeClient> {
    const kc = new KubeConfig();
    if (kubeconfig !== undefined) kc.loadFromFile(kubeconfig);
    else kc.loadFromDefault();
    const cluster = kc.getCurrentCluster();
    if (cluster === null) throw new Error('kubeconfig has no current cluster');
    const opts: https.RequestOptions = { headers: {} };
    await kc.applyToHTTPSOptions(opts);
    return new KubeClient(kc, new URL(cluster.server), opts);
  }

  /** Fresh auth headers per request: exec and token-file credentials rotate. */
  private async headers(extra: Record<string, string>): Promise<Record<string, string>> {
    const opts: https.RequestOptions = { headers: {} };
    await this.kc.applyToHTTPSOptions(opts);
    return { ...(opts.headers as Record<string, string>), Accept: 'application/json', ...extra };
  }

  private async open(method: string, path: string, opts: RequestOptions): Promise<http.IncomingMessage> {
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const headers = await this.headers({
      ...(body === undefined ? {} : { 'Content-Type': opts.contentType ?? 'application/json', 'Content-Length': String(Buffer.byteLength(body)) }),
      ...(opts.accept === undefined ? {} : { Accept: opts.accept }),
    });
    const url = new URL(withQuery(path, opts.query), this.server);
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = mod.request(url, { method, headers, agent: this.agent, signal: opts.signal, timeout: opts.timeoutMs }, resolve);
      req.on('timeout', () => req.destroy(new KubeApiError('Network', 0, `${method} ${url.pathname}: timed out`)));
      req.on('error', (err) => reject(err instanceof KubeApiError || (err as { name?: string }).name === 'AbortError' ? err : new KubeApiError('Network', 0, `${method} ${url.pathname}: ${err.message}`)));
      if (body !== undefined) req.write(body);
      req.end();
    });
  }

  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.open(method, path, { timeoutMs: 30_000, ...opts });
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) {
      if (text === '') return undefined as T;
      // /readyz, /healthz and friends answer text/plain.
      return (String(res.headers['content-type']).startsWith('application/json') ? JSON.parse(text) : text) as T;
    }
    let reason: string | undefined;
    let message = text.slice(0, 2000);
    try {
      const st = JSON.parse(text) as { reason?: string; message?: string };
      reason = st.reason;
      message = st.message ?? message;
    } catch {
      // not a Status object; keep the raw text
    }
    throw new KubeApiError(codeFor(status, reason), status, `${method} ${path}: ${status} ${message}`);
  }

  /** Streams a watch until the server ends it, the signal aborts, or the connection breaks. */
  async watch<T>(path: string, query: Record<string, string | number | boolean | undefined>, onEvent: (e: WatchEvent<T>) => void, signal: AbortSignal): Promise<void> {
    const res = await this.open('GET', path, { query: { ...query, watch: true }, signal });
    const status = res.statusCode ?? 0;
    if (status !== 200) {
      res.resume();
      throw new KubeApiError(codeFor(status, undefined), status, `watch ${path}: ${status}`);
    }
    res.setEncoding('utf8');
    let buf = '';
    for await (const chunk of res) {
      buf += chunk as string;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line !== '') onEvent(JSON.parse(line) as WatchEvent<T>);
      }
    }
  }

  close(): void {
    this.agent.destroy();
  }
}

/** REST path of a collection or object. `group` '' is the core API. */
export function resourcePath(apiVersion: string, plural: string, namespace?: string, name?: string, sub?: string): string {
  const root = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  let p = root;
  if (namespace !== undefined) p += `/namespaces/${encodeURIComponent(namespace)}`;
  p += `/${plural}`;
  if (name !== undefined) p += `/${encodeURIComponent(name)}`;
  if (sub !== undefined) p += `/${sub}`;
  return p;
}

export function isCode(err: unknown, code: KubeErrorCode): boolean {
  return err instanceof KubeApiError && err.code === code;
}
