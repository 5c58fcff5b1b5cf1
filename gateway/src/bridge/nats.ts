/**
 * The NATS bridge: the I/O around `routing.ts`. Backends publish to NATS; one replica handles each message and
 * publishes it through the fan-out, which reaches the whole fleet (with the Redis adapter) exactly once.
 *
 * Two modes (docs/reference/nats.md):
 * - core NATS: every replica subscribes each subject in one QUEUE GROUP, so NATS hands each message to one
 *   replica however many run. Messages published while no replica is connected are lost (core NATS is
 *   at-most-once).
 * - JetStream (NATS_JETSTREAM_STREAM + NATS_JETSTREAM_DURABLE): every replica pulls from one durable consumer
 *   with explicit acks; a message is acked only after the fan-out publish resolved, so events published while
 *   every replica is down are delivered when one comes back (at-least-once: a replica that dies between the
 *   publish and the ack has the message redelivered).
 *
 * The connection reconnects forever; `healthy()` is false from a disconnect until the reconnection has been
 * confirmed by a round trip (so the server has our subscriptions again), and feeds /readyz.
 */
import { connect, credsAuthenticator, nanos, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
  type ConsumerMessages,
  type JsMsg,
} from '@nats-io/jetstream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Fanout } from '../fanout/fanout.ts';
import type { Logger } from '../log.ts';
import type { GatewayMetrics } from '../metrics/metrics.ts';
import { routeMessage, type DropReason } from './routing.ts';

export const DEFAULT_QUEUE_GROUP = 'rtgw-bridge';
/** How long between reconnection attempts; forever, never giving up. */
export const RECONNECT_WAIT_MS = 500;
/** JetStream: deliveries of one message before the bridge gives up on it (fan-out publish kept failing). */
export const MAX_DELIVER = 5;
/** JetStream: a message not acked within this is redelivered (to any replica). */
const ACK_WAIT_MS = 30_000;
/** JetStream: how long the stream the bridge creates keeps events (when it has to create one). */
const STREAM_MAX_AGE_MS = 24 * 3600 * 1000;
/** JetStream: the delay before a message whose publish failed is redelivered. */
const NAK_DELAY_MS = 1000;
/** How long to wait before retrying a JetStream setup that failed (stream/consumer creation). */
const SETUP_RETRY_MS = 2000;
/** How long close() lets in-flight messages finish before it closes the connection regardless. */
const DRAIN_TIMEOUT_MS = 5000;

export type BridgeDropReason = DropReason | 'publish_failed';

export interface NatsBridgeOptions {
  readonly url: string;
  readonly subjects: readonly string[];
  readonly queueGroup?: string;
  readonly jetstream?: { readonly stream: string; readonly durable: string } | undefined;
  /** The content of a `.creds` file, when the server wants one. */
  readonly creds?: Uint8Array | undefined;
}

export interface NatsBridgeDeps {
  readonly fanout: Pick<Fanout, 'publish'>;
  readonly logger: Logger;
  readonly metrics: Pick<GatewayMetrics, 'natsMessages' | 'natsDropped' | 'natsConnected'>;
}

export interface NatsBridge {
  /** Connects (waiting for NATS as long as it takes) and subscribes; resolves once messages flow. */
  start(): Promise<void>;
  /** Connected and subscribed (or consuming); false while disconnected or reconnecting. */
  healthy(): boolean;
  /** Stops taking messages, lets in-flight ones finish, closes the connection. */
  close(): Promise<void>;
}

type Outcome = 'done' | 'dropped' | 'failed';

const isApiError = (error: unknown, code: number) => error instanceof JetStreamApiError && error.code === code;

export function createNatsBridge(options: NatsBridgeOptions, deps: NatsBridgeDeps): NatsBridge {
  const { logger, metrics } = deps;
  const log = logger.child({ component: 'nats-bridge' });
  const queueGroup = options.queueGroup ?? DEFAULT_QUEUE_GROUP;

  let nc: NatsConnection | undefined;
  let closing = false;
  /** Subscriptions (or the consumer) are in place. */
  let subscribed = false;
  /** The link is up and a round trip since the last (re)connection confirmed it. */
  let linkConfirmed = false;
  /** Bumped on every link change, so a late round trip cannot mark a newer, broken link as confirmed. */
  let linkEpoch = 0;
  let starting: Promise<void> | undefined;
  let consumerMessages: ConsumerMessages | undefined;
  const loops: Promise<void>[] = [];

  const healthy = () => subscribed && linkConfirmed && !closing;
  const publishGauge = () => metrics.natsConnected.set(healthy() ? 1 : 0);
  publishGauge();

  const drop = (reason: BridgeDropReason, subject: string) => {
    metrics.natsMessages.inc({ outcome: 'dropped' });
    metrics.natsDropped.inc({ reason });
    // The subject only: payloads may carry personal data.
    log.debug({ event: 'nats_drop', subject, reason }, 'NATS message dropped');
  };

  /** Routes and publishes one message. 'failed': the fan-out publish threw (the caller decides what that means). */
  async function handle(subject: string, data: Uint8Array): Promise<Outcome> {
    const decision = routeMessage(subject, data);
    if (!decision.deliver) {
      drop(decision.reason, subject);
      return 'dropped';
    }
    try {
      await deps.fanout.publish(decision.tenantId, decision.rooms, 'event', decision.envelope, 'nats');
    } catch (error) {
      log.error({ event: 'nats_publish_failed', subject, err: error }, 'fan-out publish of a NATS message failed');
      return 'failed';
    }
    metrics.natsMessages.inc({ outcome: 'delivered' });
    return 'done';
  }

  function confirmLink(conn: NatsConnection) {
    const epoch = ++linkEpoch;
    conn.flush().then(
      () => {
        if (epoch !== linkEpoch) return;
        linkConfirmed = true;
        publishGauge();
        log.info({ event: 'nats_connected' }, 'NATS connection (re)established');
      },
      () => {
        // The link broke again; the next reconnect confirms anew.
      },
    );
  }

  function linkDown(reason: string) {
    linkEpoch += 1;
    if (linkConfirmed) log.warn({ event: 'nats_disconnected', reason }, 'NATS connection lost; reconnecting');
    linkConfirmed = false;
    publishGauge();
  }

  async function watchStatus(conn: NatsConnection) {
    for await (const status of conn.status()) {
      switch (status.type) {
        case 'disconnect':
        case 'reconnecting':
        case 'staleConnection':
        case 'close':
          linkDown(status.type);
          break;
        case 'reconnect':
          confirmLink(conn);
          break;
        case 'error':
          log.warn({ event: 'nats_error', err: status.error }, 'NATS server error');
          break;
        default:
          break;
      }
    }
  }

  function subscribeCore(conn: NatsConnection) {
    for (const subject of options.subjects) {
      const sub: Subscription = conn.subscribe(subject, { queue: queueGroup });
      // One loop per subscription: messages of a subject are published in the order NATS delivered them.
      loops.push((async () => {
        for await (const msg of sub) {
          // Core NATS cannot redeliver: a failed publish is a dropped message.
          if ((await handle(msg.subject, msg.data)) === 'failed') drop('publish_failed', msg.subject);
        }
      })());
    }
  }

  /** Makes sure the stream and the durable consumer exist; every replica runs this, so it is idempotent. */
  async function ensureJetStream(conn: NatsConnection, stream: string, durable: string) {
    const jsm = await jetstreamManager(conn);
    try {
      const info = await jsm.streams.info(stream);
      log.info({ event: 'nats_stream', stream, subjects: info.config.subjects }, 'using the existing JetStream stream');
    } catch (error) {
      if (!isApiError(error, JetStreamApiCodes.StreamNotFound)) throw error;
      // Limits retention (not work-queue) so other consumers may read the same stream; old events age out.
      await jsm.streams.add({
        name: stream,
        subjects: [...options.subjects],
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        max_age: nanos(STREAM_MAX_AGE_MS),
      });
      log.info({ event: 'nats_stream_created', stream, subjects: options.subjects }, 'created the JetStream stream');
    }
    try {
      await jsm.consumers.info(stream, durable);
    } catch (error) {
      if (!isApiError(error, JetStreamApiCodes.ConsumerNotFound)) throw error;
      await jsm.consumers.add(stream, {
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: nanos(ACK_WAIT_MS),
        max_deliver: MAX_DELIVER,
        // One subject can be a filter on any server; several need filter_subjects (NATS 2.10+), so with several
        // the consumer reads the whole stream (which, created here, holds exactly those subjects).
        ...(options.subjects.length === 1 ? { filter_subject: options.subjects[0]! } : {}),
      });
      log.info({ event: 'nats_consumer_created', stream, durable }, 'created the durable JetStream consumer');
    }
  }

  async function settle(msg: JsMsg) {
    const outcome = await handle(msg.subject, msg.data);
    if (outcome === 'done') msg.ack();
    // Routing will never accept it, however often it is delivered.
    else if (outcome === 'dropped') msg.term(); // no reason: "+TERM reason" needs NATS 2.10
    else if (msg.info.deliveryCount >= MAX_DELIVER) {
      msg.term();
      drop('publish_failed', msg.subject);
    } else msg.nak(NAK_DELAY_MS);
  }

  async function consumeJetStream(conn: NatsConnection, stream: string, durable: string) {
    for (;;) {
      try {
        await ensureJetStream(conn, stream, durable);
        break;
      } catch (error) {
        if (closing) return;
        log.error({ event: 'nats_jetstream_setup_failed', stream, durable, err: error }, 'JetStream setup failed; retrying');
        await sleep(SETUP_RETRY_MS);
        if (closing) return;
      }
    }
    const consumer = await jetstream(conn).consumers.get(stream, durable);
    const messages = await consumer.consume({ max_messages: 64 });
    consumerMessages = messages;
    loops.push((async () => {
      for await (const msg of messages) await settle(msg);
    })());
    loops.push((async () => {
      for await (const note of messages.status()) {
        if (note.type === 'heartbeats_missed' || note.type === 'consumer_not_found' || note.type === 'stream_not_found' || note.type === 'consumer_deleted') {
          log.warn({ event: 'nats_consumer_status', status: note.type }, 'JetStream consumer status');
        }
      }
    })());
  }

  async function run() {
    // waitOnFirstConnect: NATS being down at start-up is an outage like any other, not a reason to exit.
    const conn = await connect({
      servers: options.url,
      name: 'rtgw-bridge',
      maxReconnectAttempts: -1,
      reconnectTimeWait: RECONNECT_WAIT_MS,
      waitOnFirstConnect: true,
      ...(options.creds ? { authenticator: credsAuthenticator(options.creds) } : {}),
    });
    if (closing) {
      await conn.close();
      return;
    }
    nc = conn;
    void watchStatus(conn);
    if (options.jetstream) await consumeJetStream(conn, options.jetstream.stream, options.jetstream.durable);
    else subscribeCore(conn);
    if (closing) return;
    subscribed = true;
    confirmLink(conn);
    // start() resolves once the subscriptions are known to the server.
    await conn.flush().catch(() => undefined);
    log.info({ event: 'nats_bridge_started', mode: options.jetstream ? 'jetstream' : 'core', subjects: options.subjects, queue_group: queueGroup }, 'NATS bridge started');
  }

  return {
    start() {
      starting ??= run();
      return starting;
    },
    healthy,
    async close() {
      if (closing) return;
      closing = true;
      publishGauge();
      const conn = nc;
      if (!conn || conn.isClosed()) return;
      await consumerMessages?.close().catch(() => undefined);
      // Draining unsubscribes and lets in-flight messages finish; without a link it could wait for a reconnect.
      if (linkConfirmed) await Promise.race([conn.drain().catch(() => undefined), sleep(DRAIN_TIMEOUT_MS, undefined, { ref: false })]);
      if (!conn.isClosed()) await conn.close();
      await Promise.race([Promise.allSettled(loops), sleep(DRAIN_TIMEOUT_MS, undefined, { ref: false })]);
    },
  };
}
