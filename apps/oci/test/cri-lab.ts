import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { credentials, loadPackageDefinition, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ContainerdLab, IMAGE, SANDLOCK_OCI } from './containerd-lab.js';

const PROTO = fileURLToPath(new URL('./cri/runtime-v1.proto', import.meta.url));

/** The namespace the CRI plugin keeps its pods, containers and images in. */
export const CRI_NAMESPACE = 'k8s.io';
/** The image's `pause` tag (a long sleep): the pods' sandbox image. */
export const PAUSE_IMAGE = IMAGE.replace(/:latest$/, ':pause');

/** One unary call of a grpc-js client as a promise. */
type Call = (request: object) => Promise<Record<string, unknown>>;

type GrpcClient = Record<
  string,
  (request: object, callback: (error: ServiceError | null, reply: unknown) => void) => void
> & { close(): void };

function promised(client: GrpcClient): Record<string, Call> {
  return new Proxy({} as Record<string, Call>, {
    get: (_target, method: string) => (request: object) =>
      new Promise((resolve, reject) => {
        client[method]!.call(client, request, (error, reply) => {
          if (error !== null) reject(error);
          else resolve(reply as Record<string, unknown>);
        });
      }),
  });
}

/**
 * A private containerd whose CRI plugin has two runtime handlers, `runc` and
 * `sandlock` (the runc shim with BinaryName = sandlock-oci), each with a root
 * of its own, and a gRPC client of the CRI's RuntimeService and ImageService,
 * as kubelet is.
 */
export class CriLab {
  readonly containerd = new ContainerdLab();
  readonly logs = join(this.containerd.dir, 'pods');
  private clients: GrpcClient[] = [];
  runtime!: Record<string, Call>;
  images!: Record<string, Call>;

  /** The directory a handler's runtime keeps its containers' state in (its --root). */
  runtimeRoot(handler: string): string {
    return join(this.containerd.dir, `runtime-${handler}`);
  }

  /** Starts containerd and connects; null, or why the CRI plugin cannot serve here. */
  async start(): Promise<string | null> {
    const lab = this.containerd;
    const tar = lab.buildImage();
    const section = 'plugins."io.containerd.grpc.v1.cri"';
    const handler = (name: string, binary: string) => [
      `[${section}.containerd.runtimes.${name}]`,
      '  runtime_type = "io.containerd.runc.v2"',
      // The pod's annotations that reach the runtime (docs/kubernetes.md).
      '  pod_annotations = ["dev.sandlock.*"]',
      `[${section}.containerd.runtimes.${name}.options]`,
      `  BinaryName = "${binary}"`,
      `  Root = "${this.runtimeRoot(name)}"`,
    ];
    await lab.start([
      `  sandbox_image = "${PAUSE_IMAGE}"`,
      // No CNI: the pods here use the host's network, for which none is set up.
      `[${section}.cni]`,
      `  bin_dir = "${join(lab.dir, 'cni-bin')}"`,
      `  conf_dir = "${join(lab.dir, 'cni-conf')}"`,
      ...handler('runc', '/usr/sbin/runc'),
      ...handler('sandlock', process.env.WRAP ?? SANDLOCK_OCI),
    ]);
    const plugins = lab.run('ctr', ['--address', lab.socket, 'plugins', 'ls'], 60_000).stdout;
    const cri = plugins.split('\n').find((line) => /^io\.containerd\.grpc\.v1\s+cri\s/.test(line));
    if (cri === undefined || !/\sok\s*$/.test(cri)) {
      const errors = readFileSync(lab.log, 'utf8')
        .split('\n')
        .filter((line) => /level=error/.test(line));
      return `containerd's CRI plugin did not start (${cri?.trim() ?? 'not listed'}): ${errors.join('; ')}`;
    }
    const imported = lab.run(
      'ctr',
      lab.ctrArgs(
        ['images', 'import', '--base-name', IMAGE.replace(/:latest$/, ''), tar],
        CRI_NAMESPACE,
      ),
      120_000,
    );
    if (imported.status !== 0) throw new Error(`ctr images import: ${imported.stderr}`);
    mkdirSync(this.logs, { recursive: true });
    const definition = loadSync(PROTO, {
      keepCase: true,
      longs: String,
      enums: String,
      defaults: true,
    });
    const api = loadPackageDefinition(definition) as unknown as {
      runtime: {
        v1: Record<string, new (address: string, creds: unknown) => GrpcClient>;
      };
    };
    const address = `unix://${lab.socket}`;
    const runtime = new api.runtime.v1.RuntimeService!(address, credentials.createInsecure());
    const images = new api.runtime.v1.ImageService!(address, credentials.createInsecure());
    this.clients = [runtime, images];
    this.runtime = promised(runtime);
    this.images = promised(images);
    return null;
  }

  /** The containers' state directories a handler's runtime still holds. */
  leftInRuntimeRoot(handler: string): string[] {
    try {
      // The shim gives the runtime --root ROOT/NAMESPACE.
      return readdirSync(join(this.runtimeRoot(handler), CRI_NAMESPACE));
    } catch {
      return [];
    }
  }

  /** Processes (but containerd) whose command line names `needle`: shims, supervisors, workloads. */
  processesNaming(needle: string): string[] {
    const found: string[] = [];
    for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
      let line: string;
      try {
        line = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      } catch {
        continue; // It ended while the list was read.
      }
      if (line.includes(needle) && !line.startsWith('containerd --config')) {
        found.push(`${pid}: ${line.trim()}`);
      }
    }
    return found;
  }

  /** Mount points whose path names `needle`: a pod's /dev/shm, a container's rootfs. */
  mountsNaming(needle: string): string[] {
    return readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((line) => line.split(' ')[4] ?? '')
      .filter((point) => point.includes(needle));
  }

  async stop(): Promise<void> {
    // Pods a failed test left: stopped and removed through the CRI, as kubelet would.
    if (this.runtime !== undefined) {
      try {
        const listed = await this.runtime.ListPodSandbox!({});
        for (const pod of listed.items as { id: string }[]) {
          await this.runtime.StopPodSandbox!({ pod_sandbox_id: pod.id }).catch(() => {});
          await this.runtime.RemovePodSandbox!({ pod_sandbox_id: pod.id }).catch(() => {});
        }
      } catch {
        // containerd is not answering: stop() below ends it and unmounts what it left.
      }
    }
    for (const client of this.clients) client.close();
    this.containerd.stop();
  }
}
