/** An inclusive range of TCP ports. */
export interface PortRange {
  from: number;
  to: number;
}

/** One port, a range, or a list of both. */
export type Ports = number | PortRange | readonly (number | PortRange)[];

export const MAX_PORT = 65535;

function checkPort(port: number, what: string): void {
  if (!Number.isInteger(port) || port < 0 || port > MAX_PORT) {
    throw new RangeError(`Landlock ${what} must be an integer in 0..${MAX_PORT}, got ${port}`);
  }
}

/** Validates `ports` and returns them as ranges (a single port is a range of one). */
export function toRanges(ports: Ports): PortRange[] {
  const list = Array.isArray(ports) ? ports : [ports as number | PortRange];
  return list.map((entry: number | PortRange) => {
    if (typeof entry === 'number') {
      checkPort(entry, 'port');
      return { from: entry, to: entry };
    }
    checkPort(entry.from, 'port range start');
    checkPort(entry.to, 'port range end');
    if (entry.from > entry.to) {
      throw new RangeError(`Landlock port range ${entry.from}-${entry.to} is empty (start > end)`);
    }
    return { from: entry.from, to: entry.to };
  });
}

export function formatRange(range: PortRange): string {
  return range.from === range.to ? `${range.from}` : `${range.from}-${range.to}`;
}
