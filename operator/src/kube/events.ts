/**
 * Kubernetes Events about a RealtimeGateway ("what happened", for `kubectl describe`). Repeats of the
 * same reason+message on the same object within a window are counted on the existing Event, as
 * client-go's recorder does, so a crash-looping reconcile cannot flood etcd.
 */
import { randomBytes } from 'node:crypto';
import { resourcePath, type KubeClientLike } from './client.ts';

export interface InvolvedObject {
  apiVersion: string;
  kind: string;
  name: string;
  namespace: string;
  uid?: string;
}

export type EventType = 'Normal' | 'Warning';

interface Recorded {
  name: string;
  count: number;
  first: string;
}

export class EventRecorder {
  private readonly client: KubeClientLike;
  private readonly component: string;
  private readonly recent = new Map<string, Recorded>();
  private readonly onError: (err: unknown) => void;

  constructor(client: KubeClientLike, component: string, onError: (err: unknown) => void) {
    this.client = client;
    this.component = component;
    this.onError = onError;
  }

  /** Fire and forget: an Event that cannot be written must never fail a reconcile. */
  record(obj: InvolvedObject, type: EventType, reason: string, message: string): void {
    void this.write(obj, type, reason, message).catch(this.onError);
  }

  private async write(obj: InvolvedObject, type: EventType, reason: string, message: string): Promise<void> {
    const now = new Date().toISOString();
    const key = `${obj.namespace}/${obj.name}/${obj.uid ?? ''}/${type}/${reason}/${message}`;
    const seen = this.recent.get(key);
    const path = resourcePath('v1', 'events', obj.namespace);
    if (seen !== undefined) {
      seen.count++;
      await this.client.request('PATCH', `${path}/${seen.name}`, {
        body: { count: seen.count, lastTimestamp: now },
        contentType: 'application/merge-patch+json',
      });
      return;
    }
    if (this.recent.size > 4096) this.recent.clear();
    const name = `${obj.name}.${Date.now().toString(16)}${randomBytes(3).toString('hex')}`;
    this.recent.set(key, { name, count: 1, first: now });
    await this.client.request('POST', path, {
      body: {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name, namespace: obj.namespace },
        involvedObject: obj,
        type,
        reason,
        message: message.slice(0, 1024),
        source: { component: this.component },
        reportingComponent: this.component,
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      },
    });
  }
}
