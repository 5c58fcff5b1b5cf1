/**
 * The container images, built with buildah from images/*.Containerfile exactly as `make images` does, on a
 * stand-in for docker.io/library/node:24-bookworm-slim (no registry is reachable here), then run: the gateway
 * answers /healthz as a non-root user, drains and exits 0 on SIGTERM delivered through tini, writes nothing
 * outside /tmp; each image carries its own workspace's production dependencies only; the operator prints its
 * version. The first run debootstraps the base (a few minutes); later runs reuse it from $RTGW_CACHE/images.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { REPO_ROOT } from '../harness/gateway.ts';
import { buildImages, changedSince, createContainer, descendants, imageConfig, uidsOf, VERSION, type Container } from '../harness/images.ts';
import { freePort } from '../harness/ports.ts';
import { waitFor } from '../harness/process.ts';
import { TEST_SECRET } from '../harness/tokens.ts';

const BUILD_TIMEOUT = 30 * 60_000;

interface LockEntry {
  dev?: boolean;
  devOptional?: boolean;
  link?: boolean;
}
const lock = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };

/** Every package directory under node_modules (scoped ones as @scope/name), nested node_modules included. */
function installed(nodeModules: string, prefix = 'node_modules'): string[] {
  if (!existsSync(nodeModules)) return [];
  const found: string[] = [];
  for (const entry of readdirSync(nodeModules, { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue;
    const names = entry.name.startsWith('@') ? readdirSync(join(nodeModules, entry.name)).map((n) => `${entry.name}/${n}`) : [entry.name];
    for (const name of names) {
      found.push(`${prefix}/${name}`);
      found.push(...installed(join(nodeModules, name, 'node_modules'), `${prefix}/${name}/node_modules`));
    }
  }
  return found;
}

/** Lockfile keys of the packages in an image's /app (root node_modules and the workspace's own). */
function packagesInImage(rootfs: string, workspace: string): string[] {
  return [
    ...installed(join(rootfs, 'app/node_modules')),
    ...installed(join(rootfs, 'app', workspace, 'node_modules'), `${workspace}/node_modules`),
  ];
}

function assertProductionOnly(packages: readonly string[], workspace: string, forbidden: readonly string[]): void {
  assert.ok(packages.length > 0, 'no packages in the image');
  for (const key of packages) {
    const entry = lock.packages[key];
    assert.ok(entry, `${key} is in the ${workspace} image but not in package-lock.json`);
    assert.ok(!entry.dev && !entry.devOptional, `${key} is a devDependency, yet it is in the ${workspace} image`);
    assert.ok(!entry.link, `${key} is a workspace link, yet it is in the ${workspace} image`);
  }
  for (const name of forbidden) {
    assert.ok(!packages.includes(`node_modules/${name}`), `${name} must not be in the ${workspace} image`);
  }
}

describe('container images (buildah, stand-in Node base)', { timeout: BUILD_TIMEOUT }, () => {
  let images: { gateway: string; operator: string };
  const containers: Container[] = [];
  const container = async (image: string, name: string) => {
    const created = await createContainer(image, `${name}-${process.pid}`);
    containers.push(created);
    return created;
  };

  before(async () => {
    images = await buildImages();
  }, { timeout: BUILD_TIMEOUT });
  after(async () => {
    for (const created of containers) await created.remove();
  });

  it('declares a numeric non-root user, tini as entrypoint, the port and OCI labels', async () => {
    for (const [name, image] of Object.entries(images)) {
      const config = await imageConfig(image);
      assert.match(config.User ?? '', /^[1-9]\d*(:\d+)?$/, `${name}: USER must be a numeric non-root uid`);
      assert.deepEqual(config.Entrypoint?.slice(0, 1), ['/usr/bin/tini'], `${name}: tini runs first`);
      assert.deepEqual(config.Cmd, ['node', 'src/main.ts']);
      assert.equal(config.WorkingDir, `/app/${name}`);
      assert.equal(config.Labels?.['org.opencontainers.image.version'], VERSION);
      assert.equal(config.Labels?.['org.opencontainers.image.title'], `realtime-gateway/${name}`);
      assert.equal(config.Labels?.['org.opencontainers.image.base.name'], 'docker.io/library/node:24-bookworm-slim');
      assert.ok(config.Labels?.['org.opencontainers.image.revision'], `${name}: revision label`);
    }
    assert.ok(Object.hasOwn((await imageConfig(images.gateway)).ExposedPorts ?? {}, '8081/tcp'), 'gateway exposes 8081');
  });

  it('the gateway image holds the gateway sources and its production dependencies only', async () => {
    const { rootfs } = await container(images.gateway, 'rtgw-images-gateway-fs');
    assert.deepEqual(readdirSync(join(rootfs, 'app')).sort(), ['gateway', 'node_modules']);
    assert.deepEqual(readdirSync(join(rootfs, 'app/gateway')).sort(), ['node_modules', 'package.json', 'src']);
    assert.ok(existsSync(join(rootfs, 'app/gateway/src/main.ts')));
    const packages = packagesInImage(rootfs, 'gateway');
    assertProductionOnly(packages, 'gateway', ['typescript', 'socket.io-client', '@kubernetes/client-node', 'node', 'wscat', 'js-yaml', '@realtime-gateway/operator']);
    for (const needed of ['socket.io', 'ioredis', 'jose', 'pino', 'ws']) assert.ok(packages.includes(`node_modules/${needed}`), `${needed} is missing`);
  });

  it('the operator image holds the operator sources and its production dependencies only', async () => {
    const { rootfs } = await container(images.operator, 'rtgw-images-operator-fs');
    assert.deepEqual(readdirSync(join(rootfs, 'app')).sort(), ['node_modules', 'operator']);
    assert.deepEqual(readdirSync(join(rootfs, 'app/operator')).sort(), ['node_modules', 'package.json', 'src']);
    const packages = packagesInImage(rootfs, 'operator');
    assertProductionOnly(packages, 'operator', ['typescript', 'socket.io-client', 'socket.io', 'ioredis', '@nats-io/transport-node', 'node', '@realtime-gateway/gateway']);
    assert.ok(packages.includes('node_modules/@kubernetes/client-node'));
  });

  it('the operator entrypoint prints its version', async () => {
    const ctr = await container(images.operator, 'rtgw-images-operator');
    const { code, output } = await ctr.exec([...ctr.command, '--version']);
    assert.equal(code, 0, output);
    assert.match(output, new RegExp(`^${VERSION.replaceAll('.', '\\.')}$`, 'm'));
  });

  it('the gateway runs as non-root, answers /healthz, drains on SIGTERM through tini, exits 0, writes only /tmp', async () => {
    const ctr = await container(images.gateway, 'rtgw-images-gateway');
    const port = await freePort();
    // Past the creation of its root filesystem (vfs copied every file just now); the slack covers the coarse
    // clock file timestamps are taken from.
    await sleep(500);
    const startedAt = Date.now() - 100;
    const gateway = ctr.spawn(ctr.command, { JWT_SECRET_KEY: TEST_SECRET, PORT: String(port), HOST: '127.0.0.1', DRAIN_SECONDS: '1' });
    await waitFor(`the gateway image on :${port} to be healthy`, async () => {
      if (gateway.child.exitCode !== null) throw new Error(`buildah run exited with ${gateway.child.exitCode}:\n${gateway.output()}`);
      const res = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined);
      return res?.ok;
    }, 60_000);

    const tree = descendants(gateway.child.pid!);
    const tini = tree.find((p) => p.comm === 'tini');
    // node names its main thread "MainThread": it is tini's child.
    const node = tree.find((p) => p.ppid === tini?.pid);
    assert.ok(tini && node, `tini and its child under buildah run: ${JSON.stringify(tree)}`);
    assert.match(readFileSync(`/proc/${node.pid}/cmdline`, 'utf8'), /^node\0src\/main\.ts\0$/);
    for (const proc of [tini, node]) {
      const uids = uidsOf(proc.pid);
      assert.equal(uids.real, 1000, `${proc.comm} real uid`);
      assert.equal(uids.effective, 1000, `${proc.comm} effective uid`);
    }

    // What a runtime does on `kubectl delete pod`: SIGTERM to the container's first process, tini.
    process.kill(tini.pid, 'SIGTERM');
    const code = await gateway.exited;
    assert.equal(code, 0, gateway.output());
    assert.match(gateway.output(), /"msg":"draining"/);
    assert.match(gateway.output(), /"event":"shutdown","signal":"SIGTERM"/);

    // Runs with a read-only root filesystem: nothing changed outside /tmp but what buildah itself mounts.
    const mountedByBuildah = ['/proc', '/sys', '/dev', '/run', '/etc/hosts', '/etc/hostname', '/etc/resolv.conf'];
    const changed = changedSince(ctr.rootfs, startedAt, ['/tmp', ...mountedByBuildah])
      .filter((path) => path !== '/etc'); // the directory of buildah's mount points, not its contents
    assert.deepEqual(changed, [], 'the gateway wrote to its root filesystem');
  });
});
