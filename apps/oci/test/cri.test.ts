// The calls kubelet makes for a pod, from a gRPC client of the CRI, against
// a private containerd's CRI plugin: a RuntimeClass's handler `sandlock`
// (runc's shim with BinaryName = sandlock-oci), and `runc` as the control.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { IMAGE, missingForContainerd } from './containerd-lab.js';
import { CriLab } from './cri-lab.js';

/** Only catches hangs. */
const HANG = 120_000;

let lab: CriLab | null = null;
let missing = missingForContainerd();
if (missing === null) {
  lab = new CriLab();
  missing = await lab.start();
  // No test runs then, and with none the hooks below do not either.
  if (missing !== null) {
    await lab.stop();
    lab = null;
  }
}
if (missing !== null) console.warn(`CRI tests skipped: ${missing}`);

afterAll(async () => {
  await lab?.stop();
}, HANG);

async function until<T>(what: string, probe: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + HANG;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${HANG / 1000} s`);
    await new Promise((done) => setTimeout(done, 200));
  }
}

describe.skipIf(missing !== null)('the CRI flow kubelet drives', () => {
  it('serves the CRI, with the imported image', async () => {
    const version = await lab!.runtime.Version!({ version: 'v1' });
    expect(version.runtime_name).toBe('containerd');
    expect(version.runtime_api_version).toBe('v1');
    const image = await lab!.images.ImageStatus!({ image: { image: IMAGE } });
    expect((image.image as { repo_tags: string[] }).repo_tags).toContain(IMAGE);
  });

  it(
    'passes the pod annotations pod_annotations lists on to sandlock-oci (dev.sandlock.*)',
    async () => {
      // One CPU is something the container would not see without the annotation.
      expect(availableParallelism()).toBeGreaterThan(1);
      const cri = lab!.runtime;
      const podConfig = {
        metadata: { name: 'pod-annotated', uid: 'uid-annotated', namespace: 'default' },
        log_directory: join(lab!.logs, 'annotated'),
        annotations: { 'dev.sandlock.numCpus': '1' },
        linux: { security_context: { namespace_options: { network: 'NODE', pid: 'CONTAINER' } } },
      };
      const pod = await cri.RunPodSandbox!({ config: podConfig, runtime_handler: 'sandlock' });
      const podId = pod.pod_sandbox_id as string;
      try {
        const created = await cri.CreateContainer!({
          pod_sandbox_id: podId,
          config: {
            metadata: { name: 'nproc' },
            image: { image: IMAGE },
            command: ['nproc'],
            log_path: 'nproc/0.log',
            linux: {
              security_context: { namespace_options: { network: 'NODE', pid: 'CONTAINER' } },
            },
          },
          sandbox_config: podConfig,
        });
        const id = created.container_id as string;
        await cri.StartContainer!({ container_id: id });
        const status = await until('the container exits', async () => {
          const reply = await cri.ContainerStatus!({ container_id: id });
          const state = reply.status as Record<string, unknown>;
          return state.state === 'CONTAINER_EXITED' ? state : null;
        });
        expect(status.exit_code).toBe(0);
        const log = readFileSync(join(lab!.logs, 'annotated', 'nproc/0.log'), 'utf8');
        expect(
          log
            .split('\n')
            .filter(Boolean)
            .map((line) => line.split(' ').slice(1).join(' ')),
        ).toEqual(['stdout F 1']);
      } finally {
        await cri.StopPodSandbox!({ pod_sandbox_id: podId });
        await cri.RemovePodSandbox!({ pod_sandbox_id: podId });
      }
    },
    HANG * 2,
  );

  it.skipIf(availableParallelism() < 2)(
    'UpdateContainerResources changes a running container’s memory limit and CPUs (sandlock-oci update)',
    async () => {
      const cri = lab!.runtime;
      const hostNetwork = { network: 'NODE', pid: 'CONTAINER' };
      const podConfig = {
        metadata: { name: 'pod-update', uid: 'uid-update', namespace: 'default' },
        log_directory: join(lab!.logs, 'update'),
        linux: { security_context: { namespace_options: hostNetwork } },
      };
      const pod = await cri.RunPodSandbox!({ config: podConfig, runtime_handler: 'sandlock' });
      const podId = pod.pod_sandbox_id as string;
      try {
        const created = await cri.CreateContainer!({
          pod_sandbox_id: podId,
          config: {
            metadata: { name: 'limited' },
            image: { image: IMAGE },
            // The first line of /proc/meminfo (MemTotal: the memory limit) to the log, each time asked.
            command: ['sh', '-c', 'while :; do head -n 1 /proc/meminfo; sleep 0.2; done'],
            log_path: 'limited/0.log',
            linux: {
              resources: { memory_limit_in_bytes: 64 << 20, cpuset_cpus: '0' },
              security_context: { namespace_options: hostNetwork },
            },
          },
          sandbox_config: podConfig,
        });
        const id = created.container_id as string;
        await cri.StartContainer!({ container_id: id });
        // The workload's shell (its command line names no bundle, as the supervisor's does).
        const shell = await until('the shell runs', async () => {
          const found = lab!.processesNaming('sh -c while :');
          return found.length === 1 ? Number.parseInt(found[0]!, 10) : null;
        });
        const cpus = () =>
          /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync(`/proc/${shell}/status`, 'utf8'))?.[1];
        expect(cpus()).toBe('0');
        await cri.UpdateContainerResources!({
          container_id: id,
          linux: { memory_limit_in_bytes: 128 << 20, cpuset_cpus: '1' },
        });
        expect(cpus()).toBe('1');
        const log = join(lab!.logs, 'update', 'limited/0.log');
        await until('the container shows the new memory limit', async () =>
          new RegExp(`MemTotal:\\s+${128 << 10} kB`).test(readFileSync(log, 'utf8')) ? true : null,
        );
      } finally {
        await cri.StopPodSandbox!({ pod_sandbox_id: podId });
        await cri.RemovePodSandbox!({ pod_sandbox_id: podId });
      }
    },
    HANG * 2,
  );

  describe.each(['runc', 'sandlock'])('handler %s', (handler) => {
    it(
      'RunPodSandbox → CreateContainer → StartContainer → exit code and log → Stop and RemovePodSandbox',
      async () => {
        const cri = lab!.runtime;
        const hostNetwork = { network: 'NODE', pid: 'CONTAINER', ipc: 'POD' };
        const podConfig = {
          metadata: { name: `pod-${handler}`, uid: `uid-${handler}`, namespace: 'default' },
          log_directory: join(lab!.logs, handler),
          linux: { security_context: { namespace_options: hostNetwork } },
        };
        const pod = await cri.RunPodSandbox!({ config: podConfig, runtime_handler: handler });
        const podId = pod.pod_sandbox_id as string;
        expect((await cri.ListPodSandbox!({})).items).toContainEqual(
          expect.objectContaining({ id: podId, state: 'SANDBOX_READY', runtime_handler: handler }),
        );

        const container = async (name: string, command: string[]) => {
          const created = await cri.CreateContainer!({
            pod_sandbox_id: podId,
            config: {
              metadata: { name },
              image: { image: IMAGE },
              command,
              log_path: `${name}/0.log`,
              linux: { security_context: { namespace_options: hostNetwork } },
            },
            sandbox_config: podConfig,
          });
          const id = created.container_id as string;
          await cri.StartContainer!({ container_id: id });
          return id;
        };
        const exited = (id: string) =>
          until(`container ${id} exits`, async () => {
            const { status } = await cri.ContainerStatus!({ container_id: id });
            const state = status as Record<string, unknown>;
            return state.state === 'CONTAINER_EXITED' ? state : null;
          });

        const job = await container('job', [
          'sh',
          '-c',
          'echo out-$((6 * 7)); echo err-1 >&2; exit 7',
        ]);
        // A container still running when the pod is stopped, as kubelet stops a deleted pod's.
        const server = await container('server', ['sleep', '1000']);

        const status = await exited(job);
        expect(status.exit_code).toBe(7);
        expect(status.reason).toBe('Error');
        const logPath = join(lab!.logs, handler, 'job/0.log');
        expect(status.log_path).toBe(logPath);
        // The CRI log format: TIMESTAMP STREAM TAG (F: a full line) CONTENT.
        const lines = readFileSync(logPath, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((line) => line.split(' ').slice(1).join(' '))
          .sort();
        expect(lines).toEqual(['stderr F err-1', 'stdout F out-42']);
        const { status: running } = await cri.ContainerStatus!({ container_id: server });
        expect((running as { state: string }).state).toBe('CONTAINER_RUNNING');
        // kubelet's exec (kubectl exec, exec probes): in the running container, its exit code back.
        const execd = await cri.ExecSync!({
          container_id: server,
          cmd: [
            'sh',
            '-c',
            'echo exec-$((6 * 7)); grep -c "^sleep" /proc/[0-9]*/cmdline | grep -c :1; echo err >&2; exit 4',
          ],
          timeout: 60,
        });
        expect(String(execd.stdout)).toBe('exec-42\n1\n');
        expect(String(execd.stderr)).toBe('err\n');
        expect(execd.exit_code).toBe(4);

        await cri.StopPodSandbox!({ pod_sandbox_id: podId });
        expect((await exited(server)).exit_code).toBe(137);
        await cri.RemovePodSandbox!({ pod_sandbox_id: podId });
        expect((await cri.ListPodSandbox!({})).items).toEqual([]);
        expect((await cri.ListContainers!({})).containers).toEqual([]);
        // Nothing left behind: state, shims and supervisors, mounts.
        expect(lab!.leftInRuntimeRoot(handler)).toEqual([]);
        for (const id of [podId, job, server]) {
          await until(`the processes naming ${id} end`, async () =>
            lab!.processesNaming(id).length === 0 ? true : null,
          );
          expect(lab!.mountsNaming(id)).toEqual([]);
        }
      },
      HANG * 3,
    );
  });
});
