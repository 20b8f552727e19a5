/** A failure the runtime reports to its caller (log.json and the exit status 1). */
export class OciError extends Error {
  override name = 'OciError';
}

/** A usage mistake on the command line. */
export class UsageError extends OciError {
  override name = 'UsageError';
}

/**
 * What the shim needs to read when a container has already ended: the CRI
 * layer finishes a stop only on "container not running", "no such process"
 * or "does not exist" (containerd's runc shim, process/utils.go).
 */
export function notRunning(id: string): OciError {
  return new OciError(`container ${id}: container not running`);
}

export function doesNotExist(id: string): OciError {
  return new OciError(`container ${id} does not exist`);
}
