/**
 * socket.io's in-memory session store (its SessionAwareAdapter, one replica without Redis): the broadcasts of the
 * last recovery window, each with the offset a client resumes from. The Redis Streams adapter has none; the
 * stream is its store (redis-fleet.ts).
 */
interface MemoryStore {
  readonly packets?: readonly { id: string; emittedAt: number }[];
}

/** How old a kept broadcast may be and still serve as a new connection's recovery offset. */
const SHARED_OFFSET_MAX_AGE_MS = 1000;

/**
 * On one replica without Redis: the newest broadcast socket.io's in-memory store keeps, as a recovery offset
 * that costs nothing to hand out, if it was kept within the last second. The store drops a broadcast one window
 * after it was kept, so an older one would shorten a new connection's window; then there is none, and the
 * welcome itself is kept (AdapterSession.keptForRecovery, socket.emit on socket.io's path).
 */
export function latestBufferedOffset(adapter: unknown, now = Date.now()): string | undefined {
  const newest = (adapter as MemoryStore).packets?.at(-1);
  return newest && newest.emittedAt >= now - SHARED_OFFSET_MAX_AGE_MS ? newest.id : undefined;
}

/** Whether the adapter is socket.io's in-memory session store (one replica, no Redis). */
export function keepsPackets(adapter: unknown): boolean {
  return (adapter as MemoryStore).packets !== undefined;
}
