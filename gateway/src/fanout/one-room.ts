/**
 * Delivery to a single room without the de-duplication Set. socket.io's in-memory adapter (the base of the
 * Redis Streams adapter too) collects every recipient's id in a new Set for each broadcast, so that a connection
 * in two of the target rooms gets the message once. With one target room there is nothing to de-duplicate, and
 * at thousands of members that Set costs a measurable share of a broadcast's CPU. Broadcasts to several rooms
 * (or to everyone) keep the adapter's own path.
 */
interface ApplyOptions {
  rooms: Set<string>;
  except?: Set<string>;
}

interface AdapterInternals {
  rooms: Map<string, Set<string>>;
  nsp: { sockets: Map<string, unknown> };
  apply(options: ApplyOptions, callback: (socket: unknown) => void): void;
  computeExceptSids(except: Set<string> | undefined): Set<string>;
}

export function deliverOneRoomDirectly(adapter: unknown): void {
  const internals = adapter as AdapterInternals;
  const apply = internals.apply.bind(internals);
  internals.apply = (options, callback) => {
    if (options.rooms.size !== 1) return apply(options, callback);
    const [room] = options.rooms;
    const members = internals.rooms.get(room!);
    if (!members) return;
    // A publish excludes no one: no Set of excluded ids to build.
    const except = options.except === undefined || options.except.size === 0 ? undefined : internals.computeExceptSids(options.except);
    const { sockets } = internals.nsp;
    for (const id of members) {
      if (except !== undefined && except.has(id)) continue;
      const socket = sockets.get(id);
      if (socket) callback(socket);
    }
  };
}
